//! The resolver self-check: before any DNSSEC verdict, can the configured
//! resolvers support validation at all?
//!
//! Asks for the trust anchor's DNSKEY RRset with DO set (once over UDP with
//! CD clear, to see the AD bit, once over TCP) and, when one is configured,
//! for a record of a known signed name. The resolvers can support
//! validation when the DNSKEY RRset comes back, holds a configured anchor
//! key and carries RRSIGs (and the known name's answer carries RRSIGs too).
//! Otherwise every DNSSEC and DANE verdict of the run is `indeterminate`
//! with the check's reason, said once, instead of a column of `bogus`.

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use mxscope_common::record::security_dns::{DnssecReason, ResolverCheck};

use crate::security::dnssec::diagnose::{dnskeys, rrsigs, Anchors};
use crate::security::dnssec::wire::{Wire, WireError};

/// Run the self-check against `wire` for `anchors`; `signed_name` is a
/// known signed name under the anchor, when configured.
pub async fn self_check(
    wire: &Wire,
    anchors: &Anchors,
    signed_name: Option<&Name>,
    resolvers: Vec<String>,
) -> ResolverCheck {
    let zone = anchors.first_zone();
    let (udp, tcp, known) = tokio::join!(
        wire.query(&zone, RecordType::DNSKEY, false),
        wire.query_tcp(&zone, RecordType::DNSKEY, false),
        async {
            match signed_name {
                Some(name) => Some(wire.query(name, RecordType::SOA, false).await),
                None => None,
            }
        }
    );
    let mut check = ResolverCheck {
        usable: false,
        reason: None,
        resolvers,
        anchor_zone: zone.to_string(),
        dnskey_rcode: None,
        dnskey: false,
        anchor_matches: false,
        rrsig: false,
        ad: false,
        // Any answer over TCP shows the transport works (REFUSED included).
        tcp: tcp.is_ok(),
        signed_name: signed_name.map(|n| n.to_string()),
        signed_name_rrsig: known.as_ref().map(|answer| match answer {
            Ok(m) => has_rrsig(m),
            Err(_) => false,
        }),
        detail: String::new(),
    };
    let servers = check.resolvers.join(", ");
    let reason = match &udp {
        Err(e) => {
            check.detail = format!("the DNSKEY query for the trust anchor {zone} {e}");
            Some(match e {
                WireError::Timeout => DnssecReason::LookupTimeout,
                _ => DnssecReason::AnchorDnskeyUnavailable,
            })
        }
        Ok(answer) => {
            let code = answer.metadata.response_code;
            check.dnskey_rcode = Some(rcode_name(code));
            let keys = dnskeys(answer, &zone);
            check.dnskey = !keys.is_empty();
            check.anchor_matches = keys.iter().any(|k| anchors.trusts(k, &zone));
            check.rrsig = !rrsigs(&answer.answers, &zone, RecordType::DNSKEY).is_empty();
            check.ad = answer.metadata.authentic_data;
            if code != ResponseCode::NoError || !check.dnskey {
                check.detail = format!(
                    "the DNSKEY query for the trust anchor {zone} was answered {} with {} keys",
                    rcode_name(code),
                    keys.len()
                );
                Some(DnssecReason::AnchorDnskeyUnavailable)
            } else if !check.anchor_matches {
                check.detail = format!(
                    "the DNSKEY RRset of {zone} holds none of the trust anchor's keys (check --trust-anchor)"
                );
                Some(DnssecReason::AnchorMismatch)
            } else if !check.rrsig {
                check.detail = format!(
                    "the DNSKEY RRset of {zone} came back without RRSIG: the resolvers strip DNSSEC records"
                );
                Some(DnssecReason::DnssecRecordsStripped)
            } else if check.signed_name_rrsig == Some(false) {
                check.detail = format!(
                    "the signed name {} came back without RRSIG: the resolvers strip DNSSEC records",
                    check.signed_name.as_deref().unwrap_or_default()
                );
                Some(DnssecReason::DnssecRecordsStripped)
            } else {
                None
            }
        }
    };
    match reason {
        Some(reason) => {
            check.reason = Some(reason);
            check.detail = format!(
                "resolvers {servers} cannot support DNSSEC validation ({}): {}; DNSSEC and DANE verdicts from this vantage are indeterminate",
                reason.as_str(),
                check.detail
            );
        }
        None => {
            check.usable = true;
            check.detail = format!(
                "resolvers {servers} support DNSSEC validation (anchor {zone}: keys and RRSIGs{}{})",
                if check.ad { ", AD set" } else { ", no AD bit" },
                if check.tcp { ", TCP works" } else { ", TCP fails" }
            );
        }
    }
    check
}

/// A response code's mnemonic (`REFUSED`), as dig prints it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => other.to_str().to_string(),
    }
}

/// Whether an answer carries RRSIGs (answer or authority section).
fn has_rrsig(answer: &Message) -> bool {
    answer
        .answers
        .iter()
        .chain(answer.authorities.iter())
        .any(|r| r.record_type() == RecordType::RRSIG)
}
