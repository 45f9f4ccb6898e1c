//! The security checks of a run, wired into the probe: DNSSEC of a
//! domain's MX and exchanges, MTA-STS and TLS-RPT per domain; DANE per MX
//! name and reverse DNS per probed IP.
//!
//! A check never fails a probe: every failure is a verdict (`indeterminate`,
//! `dns_error`, `policy_fetch_failed`, `tlsa_lookup_failed`,
//! `lookup_failed`). Every lookup is bounded by the resolver's deadline, the
//! policy fetch by the run's connect and session timeouts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use mxscope_common::record::security_dns::{
    DaneResult, DnssecStatus, ResolverCheck, ReverseDns, RESOLVER_CHECK_EVERY,
};
use mxscope_common::record::security_policy::{Policy, TlsRpt};
use mxscope_common::{DnsResult, DomainSecurity};
use tokio::task::JoinSet;

use crate::config::{ProbeConfig, SecurityConfig};
use crate::dns::DnsConfig;
use crate::security::dane::{address_not_secure, dane_outcome};
use crate::security::dnssec::{SecureDnsError, SecureResolver, Verdict};
use crate::security::mtasts::fetch::FetchSetupError;
use crate::security::mtasts::{evaluate, FetchConfig, FetchError, MxTls, PolicyFetcher, TxtLookup};
use crate::security::{rdns, tlsrpt};

/// MX names of one IP checked for DANE (the rest are not looked up).
pub const MAX_DANE_NAMES: usize = 16;

/// Errors preparing the checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecuritySetupError {
    /// The validating resolver could not be built; check `--trust-anchor` and `--resolver`.
    #[error(transparent)]
    Dnssec(#[from] SecureDnsError),
    /// The MTA-STS fetcher could not be built; check `--ca-file` and `--resolver`.
    #[error(transparent)]
    Fetch(#[from] FetchSetupError),
}

/// Whom the MTA-STS policy fetch trusts (the same roots as the MX probe).
#[derive(Debug, Clone, Copy)]
pub enum PolicyRoots<'a> {
    Mozilla,
    File(&'a Path),
    Pem(&'a [u8]),
}

/// The validating resolver and the policy fetcher of a run.
#[derive(Debug, Clone)]
pub struct SecurityChecks {
    resolver: SecureResolver,
    fetcher: PolicyFetcher,
    /// Domains checked so far (the resolver check rides on some records).
    domains: Arc<AtomicU64>,
}

/// What the domain-level checks found, before the targets are known.
#[derive(Debug, Clone)]
pub struct DomainFacts {
    pub dnssec_mx: Verdict,
    pub dnssec_exchanges: BTreeMap<String, Verdict>,
    /// The resolver self-check, on the first domain and then one in
    /// [`RESOLVER_CHECK_EVERY`].
    pub resolver_check: Option<ResolverCheck>,
    pub sts_txt: TxtLookup,
    /// `None` when no policy was fetched (no valid TXT record).
    pub policy: Option<Result<Policy, FetchError>>,
    pub tls_rpt: TlsRpt,
}

impl DomainFacts {
    /// The record part, with the MX certificates evaluated from
    /// `per_mx_tls` (the facts of the domain's probed targets). With no
    /// facts, an enforcing policy's MX say "not probed".
    pub fn finish(&self, mx_names: &[String], per_mx_tls: &[MxTls]) -> DomainSecurity {
        DomainSecurity {
            dnssec_mx: self.dnssec_mx.status,
            dnssec_exchanges: self
                .dnssec_exchanges
                .iter()
                .map(|(name, v)| (name.clone(), v.status))
                .collect(),
            dnssec_mx_reason: self.dnssec_mx.reason,
            dnssec_exchange_reasons: self
                .dnssec_exchanges
                .iter()
                .filter_map(|(name, v)| v.reason.map(|r| (name.clone(), r)))
                .collect(),
            resolver_check: self.resolver_check.clone(),
            mta_sts: evaluate(&self.sts_txt, self.policy.as_ref(), mx_names, per_mx_tls),
            tls_rpt: self.tls_rpt.clone(),
        }
    }
}

impl SecurityChecks {
    /// Build the checks of `config` for a run probing with `probe`.
    pub fn new(
        config: &SecurityConfig,
        probe: &ProbeConfig,
        roots: PolicyRoots<'_>,
    ) -> Result<Self, SecuritySetupError> {
        let dns = DnsConfig {
            resolvers: config.resolvers.clone(),
            timeout: config.dns_timeout,
            ..DnsConfig::default()
        };
        let resolver = match (&config.trust_anchor_text, &config.trust_anchor) {
            (Some(text), _) => SecureResolver::from_text(&dns, Some(text))?,
            (None, path) => SecureResolver::new(&dns, path.as_deref())?,
        }
        .with_signed_name(config.signed_name.as_deref());
        let defaults = FetchConfig::default();
        let fetch = FetchConfig {
            connect_timeout: probe.timeouts.connect.min(defaults.connect_timeout),
            total_timeout: probe.timeouts.session.min(defaults.total_timeout),
            allow_private: probe.allow_private,
            ..defaults
        };
        let fetcher = match roots {
            PolicyRoots::Mozilla => PolicyFetcher::new(&dns, None, fetch)?,
            PolicyRoots::File(path) => PolicyFetcher::new(&dns, Some(path), fetch)?,
            PolicyRoots::Pem(pem) => PolicyFetcher::from_pem(&dns, pem, fetch)?,
        };
        Ok(Self {
            resolver,
            fetcher,
            domains: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The resolver self-check (run once, on first use). When it fails it
    /// is logged once, as a warning, here.
    pub async fn resolver_check(&self) -> &ResolverCheck {
        let check = self.resolver.resolver_check().await;
        if !check.usable && self.resolver.claim_warning() {
            tracing::warn!(
                reason = check.reason.map(|r| r.as_str()),
                "{}",
                check.detail
            );
        }
        check
    }

    /// The domain-level checks after MX resolution: DNSSEC of the MX RRset
    /// and of every exchange's addresses, TLS-RPT, the MTA-STS TXT record
    /// and (when valid) the policy.
    pub async fn domain(&self, domain: &str, dns: &DnsResult) -> DomainFacts {
        let check = self.resolver_check().await.clone();
        let seen = self.domains.fetch_add(1, Ordering::Relaxed);
        let resolver_check = (seen % RESOLVER_CHECK_EVERY == 0).then_some(check);
        let exchanges: BTreeSet<String> = dns.mx.iter().map(|mx| mx.exchange.clone()).collect();
        let exchange_statuses = async {
            let mut set = JoinSet::new();
            for name in exchanges {
                let resolver = self.resolver.clone();
                set.spawn(async move {
                    let status = resolver.address_status(&name).await;
                    (name, status)
                });
            }
            let mut statuses = BTreeMap::new();
            while let Some(joined) = set.join_next().await {
                if let Ok((name, status)) = joined {
                    statuses.insert(name, status);
                }
            }
            statuses
        };
        let sts = async {
            let txt = self.fetcher.sts_txt(domain).await;
            let policy = match txt {
                TxtLookup::Found(_) => Some(self.fetcher.fetch_policy(domain).await),
                _ => None,
            };
            (txt, policy)
        };
        let (dnssec_mx, dnssec_exchanges, (sts_txt, policy), tls_rpt) = tokio::join!(
            self.resolver.mx_status(domain),
            exchange_statuses,
            sts,
            tlsrpt::lookup(self.fetcher.dns(), domain),
        );
        DomainFacts {
            dnssec_mx,
            dnssec_exchanges,
            resolver_check,
            sts_txt,
            policy,
            tls_rpt,
        }
    }

    /// Reverse DNS of a probed IP.
    pub async fn reverse(&self, ip: IpAddr) -> ReverseDns {
        rdns::reverse(&self.resolver, ip).await
    }

    /// DANE per MX name for the chain a TLS session to the IP showed (leaf
    /// first, DER). The TLSA RRset is looked up only when the MX host's own
    /// A/AAAA are secure (RFC 7672 §2.2.1); the domain's MX RRset is judged
    /// per domain (`security.dnssec_mx`).
    pub async fn dane(
        &self,
        mx_names: &[String],
        chain: &[Vec<u8>],
    ) -> BTreeMap<String, DaneResult> {
        let mut set = JoinSet::new();
        for name in mx_names.iter().take(MAX_DANE_NAMES) {
            let resolver = self.resolver.clone();
            let name = name.clone();
            let chain = chain.to_vec();
            set.spawn(async move {
                let addresses = resolver.address_status(&name).await;
                let result = if addresses.status == DnssecStatus::Secure {
                    let lookup = resolver.tlsa(&name).await;
                    dane_outcome(&lookup, &chain, &name, SystemTime::now())
                } else {
                    address_not_secure(addresses)
                };
                (name, result)
            });
        }
        let mut results = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((name, result)) = joined {
                results.insert(name, result);
            }
        }
        results
    }
}
