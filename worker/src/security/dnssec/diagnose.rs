//! Why a validation failed: the chain of an RRset fetched again from the
//! trust anchor down, with checking disabled, and checked step by step.
//!
//! hickory's validator says `bogus` both when a signature fails and when a
//! record of the chain could not be fetched (it keeps the reason to
//! itself), and a validating upstream answers SERVFAIL to bogus data. This
//! walk tells the two apart: a fetch that fails anywhere makes the verdict
//! `indeterminate` with that reason; `bogus` needs a fault seen on data that
//! did arrive (DS matching no key, a missing, expired or wrong signature, a
//! denial without proof).
//!
//! The walk asks at most two queries per label of the name (DS, DNSKEY)
//! plus the RRset itself, each bounded by [`crate::security::dnssec::wire::Wire`]'s
//! timeout. It runs only for answers that did not validate.

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DNSKEY, DS, RRSIG};
use hickory_resolver::proto::dnssec::{TrustAnchors, Verifier};
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use mxscope_common::record::security_dns::DnssecReason;

use crate::security::dnssec::wire::{rcode_reason, Wire};

/// Labels walked at most (a DNS name has at most 127).
const MAX_DEPTH: usize = 32;

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// The chain proves the name unsigned (a delegation without DS).
    Insecure,
    /// Data arrived and fails validation: the verdict is `bogus`.
    Fault(DnssecReason),
    /// A record the verdict needs could not be fetched: `indeterminate`.
    Unavailable(DnssecReason),
    /// Everything arrived and validated: the walk saw no fault.
    NoFault,
}

/// The trust anchors with the zones they anchor.
#[derive(Clone)]
pub struct Anchors {
    keys: std::sync::Arc<TrustAnchors>,
    zones: Vec<Name>,
}

impl std::fmt::Debug for Anchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchors")
            .field("zones", &self.zones)
            .finish()
    }
}

impl Anchors {
    /// `keys` parsed from `text` (DNSKEY lines; the owner of each is an
    /// anchored zone), or the IANA root when `text` is `None`.
    pub fn new(keys: std::sync::Arc<TrustAnchors>, text: Option<&str>) -> Self {
        let mut zones: Vec<Name> = text
            .into_iter()
            .flat_map(str::lines)
            .filter(|l| l.to_ascii_uppercase().contains("DNSKEY"))
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|owner| Name::from_ascii(owner).ok())
            .map(|n| n.to_lowercase())
            .collect();
        zones.sort();
        zones.dedup();
        if zones.is_empty() {
            zones.push(Name::root());
        }
        Self { keys, zones }
    }

    /// The anchored zone closest to `name`.
    pub fn zone_for(&self, name: &Name) -> Option<&Name> {
        self.zones
            .iter()
            .filter(|z| z.zone_of(name))
            .max_by_key(|z| z.num_labels())
    }

    /// The first anchored zone (the self-check asks its DNSKEY).
    pub fn first_zone(&self) -> Name {
        self.zones.first().cloned().unwrap_or_else(Name::root)
    }

    /// Whether `key` is a trust anchor of `zone`.
    pub fn trusts(&self, key: &DNSKEY, zone: &Name) -> bool {
        self.keys
            .contains_with_name(key.public_key(), &LowerName::from(zone))
    }
}

/// CNAMEs followed at most (an MX host may be an alias, RFC 7672 §2.2.2).
const MAX_ALIASES: usize = 8;

/// Walk the chain of `name`/`rtype` from its trust anchor, and on through
/// each CNAME the answer is (a sound alias into a bogus zone is the
/// target zone's fault, found there).
pub async fn walk(wire: &Wire, anchors: &Anchors, name: &Name, rtype: RecordType) -> Finding {
    let mut name = name.clone();
    for _ in 0..MAX_ALIASES {
        match walk_name(wire, anchors, &name, rtype).await {
            Step::Alias(target) => name = target,
            Step::Done(finding) => return finding,
        }
    }
    Finding::Unavailable(DnssecReason::LookupFailed)
}

/// One name of [`walk`]: its finding, or the target of its sound CNAME.
enum Step {
    Done(Finding),
    Alias(Name),
}

impl From<Finding> for Step {
    fn from(finding: Finding) -> Self {
        Self::Done(finding)
    }
}

async fn walk_name(wire: &Wire, anchors: &Anchors, name: &Name, rtype: RecordType) -> Step {
    let now = now();
    let Some(anchor_zone) = anchors.zone_for(name).cloned() else {
        return Finding::Unavailable(DnssecReason::AnchorMismatch).into();
    };
    // The anchor's keys.
    let mut keys = match anchor_keys(wire, anchors, &anchor_zone, now).await {
        Ok(keys) => keys,
        Err(finding) => return finding.into(),
    };
    let mut zone = anchor_zone.clone();
    let mut insecure = false;
    let first = usize::from(anchor_zone.num_labels()) + 1;
    let last = usize::from(name.num_labels());
    for depth in (first..=last).take(MAX_DEPTH) {
        let child = name.trim_to(depth);
        let answer = match wire.query(&child, RecordType::DS, true).await {
            Ok(answer) => answer,
            Err(e) => return Finding::Unavailable(e.reason()).into(),
        };
        match answer.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => break,
            code => return Finding::Unavailable(rcode_reason(code)).into(),
        }
        let ds: Vec<&DS> = answer
            .answers
            .iter()
            .filter(|r| r.name == child)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
                _ => None,
            })
            .collect();
        if ds.is_empty() {
            if delegation_without_ds(&answer, &child) {
                insecure = true;
                break;
            }
            continue;
        }
        if let Err(reason) =
            check_rrset(&answer.answers, &child, RecordType::DS, (&zone, &keys), now)
        {
            return Finding::Fault(reason).into();
        }
        let key_answer = match wire.query(&child, RecordType::DNSKEY, true).await {
            Ok(answer) => answer,
            Err(e) => return Finding::Unavailable(e.reason()).into(),
        };
        if key_answer.metadata.response_code != ResponseCode::NoError {
            return Finding::Unavailable(rcode_reason(key_answer.metadata.response_code)).into();
        }
        let child_keys = dnskeys(&key_answer, &child);
        let covered: Vec<DNSKEY> = child_keys
            .iter()
            .filter(|k| ds.iter().any(|d| d.covers(&child, k).unwrap_or(false)))
            .cloned()
            .collect();
        if covered.is_empty() {
            return Finding::Fault(DnssecReason::DsMismatch).into();
        }
        if let Err(reason) = check_rrset(
            &key_answer.answers,
            &child,
            RecordType::DNSKEY,
            (&child, &covered),
            now,
        ) {
            return Finding::Fault(reason).into();
        }
        keys = child_keys;
        zone = child;
    }
    // The RRset itself.
    let answer = match wire.query(name, rtype, true).await {
        Ok(answer) => answer,
        Err(e) => return Finding::Unavailable(e.reason()).into(),
    };
    let code = answer.metadata.response_code;
    if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Finding::Unavailable(rcode_reason(code)).into();
    }
    if insecure {
        return Finding::Insecure.into();
    }
    let wanted = answer
        .answers
        .iter()
        .find(|r| {
            r.name == *name && (r.record_type() == rtype || r.record_type() == RecordType::CNAME)
        })
        .map(Record::record_type);
    match wanted {
        Some(found) => match check_rrset(&answer.answers, name, found, (&zone, &keys), now) {
            Err(reason) => Finding::Fault(reason).into(),
            Ok(()) if found == RecordType::CNAME && rtype != RecordType::CNAME => {
                match cname_target(&answer.answers, name) {
                    Some(target) => Step::Alias(target),
                    None => Finding::NoFault.into(),
                }
            }
            Ok(()) => Finding::NoFault.into(),
        },
        None => {
            // A denial: its NSEC/NSEC3 records must be there and signed.
            let proofs: Vec<(&Name, RecordType)> = answer
                .authorities
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
                .map(|r| (&r.name, r.record_type()))
                .collect();
            if proofs.is_empty() {
                return Finding::Fault(DnssecReason::NsecProofFailed).into();
            }
            for (owner, rtype) in proofs {
                if let Err(reason) =
                    check_rrset(&answer.authorities, owner, rtype, (&zone, &keys), now)
                {
                    return Finding::Fault(reason).into();
                }
            }
            Finding::NoFault.into()
        }
    }
}

/// The target of `name`'s CNAME among `records`.
fn cname_target(records: &[Record], name: &Name) -> Option<Name> {
    records
        .iter()
        .filter(|r| r.name == *name)
        .find_map(|r| match &r.data {
            RData::CNAME(target) => Some(target.0.clone()),
            _ => None,
        })
}

/// The anchor zone's DNSKEYs, checked against the anchor and self-signed.
async fn anchor_keys(
    wire: &Wire,
    anchors: &Anchors,
    zone: &Name,
    now: u32,
) -> Result<Vec<DNSKEY>, Finding> {
    let answer = match wire.query(zone, RecordType::DNSKEY, true).await {
        Ok(answer) => answer,
        Err(e) => {
            return Err(Finding::Unavailable(match e.reason() {
                DnssecReason::LookupTimeout => DnssecReason::LookupTimeout,
                _ => DnssecReason::AnchorDnskeyUnavailable,
            }))
        }
    };
    let keys = dnskeys(&answer, zone);
    if answer.metadata.response_code != ResponseCode::NoError || keys.is_empty() {
        return Err(Finding::Unavailable(DnssecReason::AnchorDnskeyUnavailable));
    }
    let trusted: Vec<DNSKEY> = keys
        .iter()
        .filter(|k| anchors.trusts(k, zone))
        .cloned()
        .collect();
    if trusted.is_empty() {
        return Err(Finding::Unavailable(DnssecReason::AnchorMismatch));
    }
    if rrsigs(&answer.answers, zone, RecordType::DNSKEY).is_empty() {
        return Err(Finding::Unavailable(DnssecReason::DnssecRecordsStripped));
    }
    check_rrset(
        &answer.answers,
        zone,
        RecordType::DNSKEY,
        (zone, &trusted),
        now,
    )
    .map_err(Finding::Fault)?;
    Ok(keys)
}

/// The DNSKEY records of `zone` in an answer.
pub fn dnskeys(answer: &Message, zone: &Name) -> Vec<DNSKEY> {
    answer
        .answers
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

/// The RRSIGs over `owner`/`rtype` among `records`.
pub fn rrsigs<'a>(records: &'a [Record], owner: &Name, rtype: RecordType) -> Vec<&'a RRSIG> {
    records
        .iter()
        .filter(|r| r.name == *owner)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig)
            }
            _ => None,
        })
        .collect()
}

/// Whether a NODATA answer to a DS query proves an unsigned delegation: an
/// NSEC owned by `child` whose bitmap has NS and neither DS nor SOA.
fn delegation_without_ds(answer: &Message, child: &Name) -> bool {
    answer.authorities.iter().any(|r| {
        r.name == *child
            && match &r.data {
                RData::DNSSEC(DNSSECRData::NSEC(nsec)) => {
                    let types: Vec<RecordType> = nsec.type_bit_maps().collect();
                    types.contains(&RecordType::NS)
                        && !types.contains(&RecordType::DS)
                        && !types.contains(&RecordType::SOA)
                }
                _ => false,
            }
    })
}

/// Check the RRset `owner`/`rtype` among `records` against the keys of
/// `zone` (`signer`): one RRSIG must name the zone as its signer (RFC 4035
/// §5.3.1), verify and be valid now. The most telling fault otherwise; an
/// RRSIG with another signer's name counts as `signature_invalid`, however
/// well its bytes verify.
pub fn check_rrset(
    records: &[Record],
    owner: &Name,
    rtype: RecordType,
    signer: (&Name, &[DNSKEY]),
    now: u32,
) -> Result<(), DnssecReason> {
    let (zone, keys) = signer;
    let rrset: Vec<&Record> = records
        .iter()
        .filter(|r| r.name == *owner && r.record_type() == rtype)
        .collect();
    let sigs = rrsigs(records, owner, rtype);
    if sigs.is_empty() {
        return Err(DnssecReason::RrsigMissing);
    }
    let mut worst = DnssecReason::DnskeyMissing;
    let rank = |r: DnssecReason| match r {
        DnssecReason::SignatureExpired => 3,
        DnssecReason::SignatureNotYetValid => 2,
        DnssecReason::SignatureInvalid => 1,
        _ => 0,
    };
    let note = |r: DnssecReason, worst: &mut DnssecReason| {
        if rank(r) > rank(*worst) {
            *worst = r;
        }
    };
    for sig in sigs {
        let input = sig.input();
        if input.signer_name != *zone {
            note(DnssecReason::SignatureInvalid, &mut worst);
            continue;
        }
        let candidates = keys.iter().filter(|k| {
            k.algorithm() == input.algorithm && k.calculate_key_tag().ok() == Some(input.key_tag)
        });
        for key in candidates {
            let class = rrset.first().map_or(DNSClass::IN, |r| r.dns_class);
            if key
                .verify_rrsig(owner, class, sig, rrset.iter().copied())
                .is_err()
            {
                note(DnssecReason::SignatureInvalid, &mut worst);
                continue;
            }
            if now > input.sig_expiration.get() {
                note(DnssecReason::SignatureExpired, &mut worst);
            } else if now < input.sig_inception.get() {
                note(DnssecReason::SignatureNotYetValid, &mut worst);
            } else {
                return Ok(());
            }
        }
    }
    Err(worst)
}

fn now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
