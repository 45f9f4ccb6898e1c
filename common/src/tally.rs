//! Per-vantage tallies over a scan's records (DESIGN §8): how many SMTP
//! sessions the scan opened and how they spread over IPs, what was
//! excluded, which targets were retried or stayed rate-limited, and the
//! DNSSEC resolver self-check. The report counts them while it streams over
//! the records; the coordinator keeps one [`VantageTally`] per scan and
//! vantage up to date as records arrive, so `mxscope status` shows them
//! without reading the records. Memory: one counter per sessions-per-IP
//! bucket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::security_dns::ResolverCheck;
use crate::record::{DnsStatus, DomainRecord, Outcome, SkipReason, TargetRecord, VersionSupport};

/// The politeness section of one vantage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Politeness {
    /// SMTP sessions opened: every attempt of every target, and in the last
    /// one each legacy version, certificate-per-name and first-flight
    /// session (the record's `sessions`).
    pub sessions: u64,
    /// Targets with at least one session.
    pub targets_contacted: u64,
    /// Most sessions to one IP.
    pub max_sessions_per_ip: u64,
    /// Targets by sessions to their IP: "1", "2", "3", "4+".
    pub sessions_per_ip: BTreeMap<String, u64>,
    /// Domains on an exclusion list (never resolved).
    pub excluded_domains: u64,
    /// Targets on an exclusion list (never contacted).
    pub excluded_targets: u64,
    /// Targets that were retried after a 421/4xx or a reset.
    pub retried_targets: u64,
    /// Retried targets whose last attempt was still refused.
    pub still_rate_limited: u64,
}

/// The sessions a target record stands for: earlier attempts (one each)
/// plus the sessions of the last one, as the worker counted them (records
/// without the count: one per legacy version tested).
pub fn sessions_of(record: &TargetRecord) -> u64 {
    if record.outcome == Outcome::Skipped {
        return 0;
    }
    let attempts = record
        .retries
        .as_ref()
        .map_or(1, |r| r.attempts.len().max(1) as u64);
    if record.sessions > 0 {
        return attempts - 1 + u64::from(record.sessions);
    }
    let p = &record.protocols;
    let legacy = [p.ssl3, p.tls1_0, p.tls1_1]
        .into_iter()
        .filter(|v| *v != VersionSupport::NotTested)
        .count() as u64;
    attempts + legacy
}

impl Politeness {
    pub fn add_domain(&mut self, record: &DomainRecord) {
        if record.dns.status == DnsStatus::Excluded {
            self.excluded_domains += 1;
        }
    }

    pub fn add_target(&mut self, record: &TargetRecord) {
        if record.skip_reason == Some(SkipReason::Excluded) {
            self.excluded_targets += 1;
        }
        if let Some(retries) = &record.retries {
            self.retried_targets += u64::from(retries.after_retry);
            self.still_rate_limited += u64::from(retries.still_limited);
        }
        let sessions = sessions_of(record);
        if sessions == 0 {
            return;
        }
        self.sessions += sessions;
        self.targets_contacted += 1;
        self.max_sessions_per_ip = self.max_sessions_per_ip.max(sessions);
        let bucket = if sessions >= 4 {
            "4+".to_string()
        } else {
            sessions.to_string()
        };
        *self.sessions_per_ip.entry(bucket).or_default() += 1;
    }

    /// Adds another tally of the same vantage (disjoint records).
    pub fn merge(&mut self, other: &Self) {
        self.sessions += other.sessions;
        self.targets_contacted += other.targets_contacted;
        self.max_sessions_per_ip = self.max_sessions_per_ip.max(other.max_sessions_per_ip);
        for (bucket, n) in &other.sessions_per_ip {
            *self.sessions_per_ip.entry(bucket.clone()).or_default() += n;
        }
        self.excluded_domains += other.excluded_domains;
        self.excluded_targets += other.excluded_targets;
        self.retried_targets += other.retried_targets;
        self.still_rate_limited += other.still_rate_limited;
    }

    /// The readable line of the text and Markdown reports.
    pub fn summary(&self) -> String {
        let spread: Vec<String> = self
            .sessions_per_ip
            .iter()
            .map(|(k, v)| format!("{v} with {k}"))
            .collect();
        format!(
            "{} SMTP sessions to {} IPs (at most {} to one IP; {}); {} domains and {} targets excluded; \
             {} targets retried, {} still rate-limited",
            self.sessions,
            self.targets_contacted,
            self.max_sessions_per_ip,
            if spread.is_empty() { "none".to_string() } else { spread.join(", ") },
            self.excluded_domains,
            self.excluded_targets,
            self.retried_targets,
            self.still_rate_limited
        )
    }
}

/// What the coordinator keeps per scan and vantage as records arrive
/// (each record counted once: the store adds a record's share in the
/// transaction that stores it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageTally {
    pub politeness: Politeness,
    /// The DNSSEC resolver self-check the vantage's workers reported (a
    /// failed one wins over a usable one: one worker that cannot validate
    /// makes the vantage's verdicts suspect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver_check: Option<ResolverCheck>,
}

impl VantageTally {
    pub fn add_domain(&mut self, record: &DomainRecord) {
        self.politeness.add_domain(record);
        if let Some(check) = record
            .security
            .as_ref()
            .and_then(|s| s.resolver_check.as_ref())
        {
            self.add_check(check);
        }
    }

    pub fn add_target(&mut self, record: &TargetRecord) {
        self.politeness.add_target(record);
    }

    fn add_check(&mut self, check: &ResolverCheck) {
        let keep = self
            .resolver_check
            .as_ref()
            .is_some_and(|kept| !kept.usable);
        if !keep {
            self.resolver_check = Some(check.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{Attempt, DnsResult, Phase, Retries};

    use super::*;

    fn target(outcome: Outcome) -> TargetRecord {
        let mut r = TargetRecord::new("192.0.2.1".parse().unwrap(), 25, vec![]);
        r.outcome = outcome;
        r
    }

    #[test]
    fn sessions_spread_exclusions_and_retries() {
        let mut p = Politeness::default();
        p.add_target(&target(Outcome::StarttlsOk));
        let mut legacy = target(Outcome::StarttlsOk);
        legacy.protocols.tls1_0 = VersionSupport::Supported;
        legacy.protocols.tls1_1 = VersionSupport::NotSupported;
        p.add_target(&legacy);
        let mut excluded = target(Outcome::Skipped);
        excluded.skip_reason = Some(SkipReason::Excluded);
        p.add_target(&excluded);
        let attempt = Attempt {
            outcome: Outcome::GreetingRefused,
            phase: Phase::Greeting,
            code: Some(421),
            detail: None,
            at_ms: 0,
        };
        let mut limited = target(Outcome::GreetingRefused);
        limited.retries = Some(Retries {
            attempts: vec![attempt.clone(), attempt.clone(), attempt.clone(), attempt],
            after_retry: true,
            still_limited: true,
        });
        p.add_target(&limited);
        p.add_domain(&DomainRecord::new(
            "x.example".into(),
            DnsResult::failed(DnsStatus::Excluded, "excluded"),
        ));
        assert_eq!(p.sessions, 1 + 3 + 4);
        assert_eq!(p.targets_contacted, 3);
        assert_eq!(p.max_sessions_per_ip, 4);
        assert_eq!(p.sessions_per_ip["1"], 1);
        assert_eq!(p.sessions_per_ip["3"], 1);
        assert_eq!(p.sessions_per_ip["4+"], 1);
        assert_eq!((p.excluded_domains, p.excluded_targets), (1, 1));
        assert_eq!((p.retried_targets, p.still_rate_limited), (1, 1));
        assert!(p
            .summary()
            .starts_with("8 SMTP sessions to 3 IPs (at most 4 to one IP"));
    }

    fn check(usable: bool) -> ResolverCheck {
        ResolverCheck {
            usable,
            reason: None,
            resolvers: vec!["192.0.2.53:53".into()],
            anchor_zone: ".".into(),
            dnskey_rcode: None,
            dnskey: usable,
            anchor_matches: usable,
            rrsig: usable,
            ad: false,
            tcp: true,
            signed_name: None,
            signed_name_rrsig: None,
            detail: if usable { "fine" } else { "broken" }.into(),
        }
    }

    #[test]
    fn the_workers_session_count_is_used_when_recorded() {
        let mut counted = target(Outcome::StarttlsOk);
        counted.sessions = 6;
        counted.protocols.tls1_0 = VersionSupport::NotSupported;
        assert_eq!(sessions_of(&counted), 6);
        let attempt = Attempt {
            outcome: Outcome::GreetingRefused,
            phase: Phase::Greeting,
            code: Some(421),
            detail: None,
            at_ms: 0,
        };
        counted.retries = Some(Retries {
            attempts: vec![attempt.clone(), attempt],
            after_retry: true,
            still_limited: false,
        });
        assert_eq!(sessions_of(&counted), 1 + 6, "one earlier attempt");
    }

    #[test]
    fn a_failed_resolver_check_wins_and_merges_add_up() {
        let mut tally = VantageTally::default();
        tally.add_check(&check(true));
        assert!(tally.resolver_check.as_ref().is_some_and(|c| c.usable));
        tally.add_check(&check(false));
        tally.add_check(&check(true));
        assert!(tally.resolver_check.as_ref().is_some_and(|c| !c.usable));

        let mut a = Politeness::default();
        a.add_target(&target(Outcome::StarttlsOk));
        let mut b = a.clone();
        let mut legacy = target(Outcome::StarttlsOk);
        legacy.protocols.ssl3 = VersionSupport::NotSupported;
        b.add_target(&legacy);
        a.merge(&b);
        assert_eq!((a.sessions, a.targets_contacted), (1 + 1 + 2, 3));
        assert_eq!(a.max_sessions_per_ip, 2);
        assert_eq!((a.sessions_per_ip["1"], a.sessions_per_ip["2"]), (2, 1));
    }
}
