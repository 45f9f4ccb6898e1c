//! One target seen from several vantages: what each view holds
//! ([`Observed`]) and the classes of their differences ([`classify`]):
//! STARTTLS stripped on path, interception told from rotation by the
//! verifying chain and the leaf key, suites filtered behind the same key,
//! reachability, rate limiting, DANE and TLSA.

use std::collections::{BTreeMap, BTreeSet};

use mxscope_common::mtasts::{self, MxTls};
use mxscope_common::record::security_dns::DaneVerdict;
use mxscope_common::{Bucket, DepthLevel, TargetRecord, Verification};

use crate::report::model::{Disagreement, TargetView};

/// What one vantage saw, with what classification needs beyond the view.
#[derive(Debug, Clone)]
pub(super) struct Observed {
    pub(super) view: TargetView,
    bucket: Bucket,
    /// A 421 in the greeting or a reply.
    rate_limited: bool,
    /// Upper-cased, sorted EHLO keywords (for comparison).
    ehlo_set: BTreeSet<String>,
    /// DANE verdict per MX name (empty without security checks).
    dane: BTreeMap<String, DaneVerdict>,
    /// TLS facts per MX name, for the MTA-STS join.
    pub(super) mx_tls: Vec<MxTls>,
    /// The chain verifies and names one of the target's MX names.
    pkix_ok: bool,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo.
    leaf_key: Option<String>,
    /// The TLSA RRset per MX name (`usage selector type data`, sorted).
    tlsa: BTreeMap<String, Vec<String>>,
    /// What the TLS depth accepted per version (suites, else classes);
    /// `None` without `--tls-depth`.
    suites: Option<BTreeMap<String, BTreeSet<String>>>,
}

impl Observed {
    pub(super) fn of(record: &TargetRecord) -> Self {
        let starttls = record.ehlo.iter().any(|k| {
            k.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
        });
        let rate_limited = record.greeting.as_ref().is_some_and(|g| g.code == 421)
            || record
                .starttls_reply
                .as_ref()
                .is_some_and(|r| r.code == 421)
            || record
                .detail
                .as_deref()
                .is_some_and(|d| d.trim_start().starts_with("421"));
        Self {
            view: TargetView {
                outcome: record.outcome.as_str().to_string(),
                ehlo: record.ehlo.clone(),
                starttls_advertised: starttls,
                certificate_sha256: record
                    .tls
                    .as_ref()
                    .and_then(|t| t.chain.first())
                    .map(|c| c.sha256.clone()),
                tls_version: record.tls.as_ref().map(|t| t.version.clone()),
                greeting_code: record.greeting.as_ref().map(|g| g.code),
            },
            bucket: record.outcome.bucket(),
            rate_limited,
            ehlo_set: record
                .ehlo
                .iter()
                .map(|k| k.trim().to_ascii_uppercase())
                .collect(),
            dane: record
                .dane
                .iter()
                .map(|(mx, d)| (mx.clone(), d.verdict))
                .collect(),
            mx_tls: mtasts::mx_tls_facts(record),
            pkix_ok: record.tls.as_ref().is_some_and(|t| {
                t.verification == Verification::Valid && t.name_match.values().any(|m| *m)
            }),
            leaf_key: record
                .tls
                .as_ref()
                .and_then(|t| t.chain.first())
                .map(|c| c.spki_sha256.clone()),
            // The `free` level's depth (raw hellos' facts) accepts nothing.
            suites: record
                .tls_depth
                .as_ref()
                .filter(|d| d.level != DepthLevel::Free)
                .map(|depth| {
                    depth
                        .versions
                        .iter()
                        .filter(|(_, v)| !v.accepted.is_empty() || !v.classes.is_empty())
                        .map(|(version, v)| {
                            let mut set: BTreeSet<String> = if v.accepted.is_empty() {
                                v.classes
                                    .iter()
                                    .map(|c| format!("class {}", c.name()))
                                    .collect()
                            } else {
                                v.accepted.iter().cloned().collect()
                            };
                            set.extend(v.groups.iter().map(|g| format!("group {g}")));
                            (version.clone(), set)
                        })
                        .collect()
                }),
            tlsa: record
                .dane
                .iter()
                .map(|(mx, d)| {
                    let mut set: Vec<String> = d
                        .tlsa
                        .iter()
                        .map(|t| {
                            format!(
                                "{} {} {} {}",
                                t.usage, t.selector, t.matching_type, t.data_hex
                            )
                        })
                        .collect();
                    set.sort();
                    set.dedup();
                    (mx.clone(), set)
                })
                .collect(),
        }
    }

    /// A DANE-valid chain for some MX name.
    fn dane_ok(&self) -> bool {
        self.dane.values().any(|v| *v == DaneVerdict::DaneValid)
    }

    /// Same outcome, EHLO set, STARTTLS presence, certificate and version.
    fn same_as(&self, other: &Self) -> bool {
        self.view.outcome == other.view.outcome
            && self.ehlo_set == other.ehlo_set
            && self.view.starttls_advertised == other.view.starttls_advertised
            && self.view.certificate_sha256 == other.view.certificate_sha256
            && self.view.tls_version == other.view.tls_version
            && self.dane == other.dane
            && self.tlsa == other.tlsa
            && self.suites == other.suites
    }

    /// An EHLO answer came back, without STARTTLS (absent or masked).
    fn answered_without_starttls(&self) -> bool {
        !self.view.starttls_advertised
            && (!self.view.ehlo.is_empty() || self.view.outcome == "no_starttls")
    }
}

/// The classes of one target's views; empty when they agree.
pub(super) fn classify(views: &BTreeMap<String, Observed>) -> Vec<Disagreement> {
    let all: Vec<&Observed> = views.values().collect();
    let Some(first) = all.first() else {
        return Vec::new();
    };
    if all.iter().all(|o| o.same_as(first)) {
        return Vec::new();
    }
    let mut classes = Vec::new();
    if all.iter().any(|o| o.view.starttls_advertised)
        && all.iter().any(|o| o.answered_without_starttls())
    {
        classes.push(Disagreement::StarttlsStrippedOnPath);
    }
    let certs: BTreeSet<&String> = all
        .iter()
        .filter_map(|o| o.view.certificate_sha256.as_ref())
        .collect();
    if certs.len() > 1 {
        classes.push(if intercepted(&all) {
            Disagreement::TlsIntercepted
        } else {
            Disagreement::CertificateDiffers
        });
    }
    if all
        .iter()
        .any(|o| o.bucket == Bucket::ConnectionError && !o.rate_limited)
        && all.iter().any(|o| o.bucket != Bucket::ConnectionError)
    {
        classes.push(Disagreement::ReachabilityDiffers);
    }
    if all.iter().any(|o| o.rate_limited) && all.iter().any(|o| !o.rate_limited) {
        classes.push(Disagreement::RateLimited);
    }
    let mut dane: BTreeMap<&String, BTreeSet<DaneVerdict>> = BTreeMap::new();
    for o in &all {
        for (mx, verdict) in &o.dane {
            dane.entry(mx).or_default().insert(*verdict);
        }
    }
    if dane.values().any(|verdicts| verdicts.len() > 1) {
        classes.push(Disagreement::DaneDiffers);
    }
    let mut tlsa: BTreeMap<&String, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for o in &all {
        for (mx, set) in &o.tlsa {
            tlsa.entry(mx).or_default().insert(set);
        }
    }
    if tlsa.values().any(|sets| sets.len() > 1) {
        classes.push(Disagreement::TlsaDiffers);
    }
    let filtered = all.iter().any(|a| {
        all.iter().any(|b| {
            a.leaf_key.is_some()
                && a.leaf_key == b.leaf_key
                && a.suites.is_some()
                && b.suites.is_some()
                && a.suites != b.suites
        })
    });
    if filtered {
        classes.push(Disagreement::SuitesDiffer);
    }
    if classes.is_empty() {
        classes.push(Disagreement::OtherDifference);
    }
    classes
}

/// Interception evidence: one view's chain verifies for the MX name (PKIX
/// with a matching name, or a DANE match) and another view's does not
/// (PKIX) or mismatches (DANE), with a different leaf key. Two verifying
/// chains with different keys are rotation or a pool, not interception.
fn intercepted(all: &[&Observed]) -> bool {
    let differs = |a: &Observed, b: &Observed| {
        b.leaf_key.is_some() && a.leaf_key.is_some() && a.leaf_key != b.leaf_key
    };
    all.iter().any(|good| {
        all.iter().any(|bad| {
            let pkix = good.pkix_ok && !bad.pkix_ok && !bad.dane_ok();
            let dane = good.dane.iter().any(|(mx, v)| {
                *v == DaneVerdict::DaneValid && bad.dane.get(mx) == Some(&DaneVerdict::DaneMismatch)
            });
            (pkix || dane) && differs(good, bad)
        })
    })
}
