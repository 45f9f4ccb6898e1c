//! What an answer says about DNSSEC: a lookup error or a proof mapped to a
//! status and its reason, and the weakest of several verdicts (pure
//! functions over hickory's types).

use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, Record, RecordType};
use mxscope_common::record::security_dns::{DnssecReason, DnssecStatus};

use super::{wire, Answer, Verdict};

/// Map a lookup error: denials carry the status of their NSEC proof.
pub(super) fn classify(e: &NetError) -> Answer {
    let failed = |status: DnssecStatus, reason: String, why: DnssecReason| Answer::Failed {
        status,
        reason,
        why,
    };
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code,
            authorities,
            ..
        })) if matches!(
            response_code,
            ResponseCode::NXDomain | ResponseCode::NoError
        ) =>
        {
            let status = denial_status(authorities.as_deref().unwrap_or(&[]));
            Answer::Empty {
                nxdomain: *response_code == ResponseCode::NXDomain,
                status,
                why: insecure_reason(status),
            }
        }
        NetError::Dns(DnsError::Nsec {
            response, proof, ..
        }) if matches!(
            response.response_code,
            ResponseCode::NXDomain | ResponseCode::NoError
        ) && *proof != Proof::Bogus =>
        {
            let status = proof_status(*proof);
            Answer::Empty {
                nxdomain: response.response_code == ResponseCode::NXDomain,
                status,
                why: insecure_reason(status),
            }
        }
        NetError::Dns(DnsError::Nsec { proof, .. }) => failed(
            proof_status(*proof),
            format!("DNSSEC denial is {proof}"),
            DnssecReason::NsecProofFailed,
        ),
        NetError::Dns(DnsError::DnssecBogus) => failed(
            DnssecStatus::Bogus,
            "DNSSEC validation failed (bogus)".into(),
            DnssecReason::ValidationFailed,
        ),
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => failed(
            DnssecStatus::Indeterminate,
            format!("response code {response_code}"),
            wire::rcode_reason(*response_code),
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => failed(
            DnssecStatus::Indeterminate,
            format!("response code {code}"),
            wire::rcode_reason(*code),
        ),
        NetError::Timeout => failed(
            DnssecStatus::Indeterminate,
            "timed out".into(),
            DnssecReason::LookupTimeout,
        ),
        other => failed(
            DnssecStatus::Indeterminate,
            other.to_string(),
            DnssecReason::LookupFailed,
        ),
    }
}

/// The reason a status that needs no diagnosis carries: `insecure` is a
/// proven unsigned delegation; `secure` needs none; `indeterminate` from a
/// proof hickory left undecided is a lookup failure.
pub(super) fn insecure_reason(status: DnssecStatus) -> Option<DnssecReason> {
    match status {
        DnssecStatus::Secure => None,
        DnssecStatus::Insecure => Some(DnssecReason::InsecureDelegation),
        DnssecStatus::Bogus => Some(DnssecReason::ValidationFailed),
        _ => Some(DnssecReason::LookupFailed),
    }
}

/// The status of a denial from its authority records: secure when an
/// NSEC/NSEC3 proved it, insecure when every record is provably insecure.
pub(super) fn denial_status(authorities: &[Record]) -> DnssecStatus {
    let proves = |r: &&Record| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3);
    if authorities
        .iter()
        .filter(proves)
        .any(|r| r.proof == Proof::Secure)
    {
        return DnssecStatus::Secure;
    }
    let relevant: Vec<&Record> = authorities
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .collect();
    if !relevant.is_empty() && relevant.iter().all(|r| r.proof == Proof::Insecure) {
        return DnssecStatus::Insecure;
    }
    weakest(relevant.iter().map(|r| proof_status(r.proof)))
}

pub(super) fn proof_status(proof: Proof) -> DnssecStatus {
    match proof {
        Proof::Secure => DnssecStatus::Secure,
        Proof::Insecure => DnssecStatus::Insecure,
        Proof::Bogus => DnssecStatus::Bogus,
        _ => DnssecStatus::Indeterminate,
    }
}

/// The weakest of several statuses (bogus < indeterminate < insecure <
/// secure); `indeterminate` for none.
pub fn weakest(statuses: impl IntoIterator<Item = DnssecStatus>) -> DnssecStatus {
    let rank = |s: DnssecStatus| match s {
        DnssecStatus::Bogus => 0,
        DnssecStatus::Indeterminate => 1,
        DnssecStatus::Insecure => 2,
        _ => 3,
    };
    statuses
        .into_iter()
        .min_by_key(|s| rank(*s))
        .unwrap_or(DnssecStatus::Indeterminate)
}

/// The weakest of several verdicts, with its reason.
pub fn weakest_verdict(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let verdicts: Vec<Verdict> = verdicts.into_iter().collect();
    let status = weakest(verdicts.iter().map(|v| v.status));
    verdicts
        .into_iter()
        .find(|v| v.status == status)
        .unwrap_or(Verdict::indeterminate(DnssecReason::LookupFailed))
}

/// Whether DANE applies to an exchange: its MX RRset and its addresses are
/// secure (RFC 7672 §2.2.1).
pub fn dane_applies(mx: DnssecStatus, addresses: DnssecStatus) -> bool {
    mx == DnssecStatus::Secure && addresses == DnssecStatus::Secure
}

/// `name` as a fully qualified, lowercase name.
pub(crate) fn fqdn(name: &str) -> Option<Name> {
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || !name.is_ascii() {
        return None;
    }
    Name::from_ascii(format!("{name}."))
        .ok()
        .map(|n| n.to_lowercase())
}
