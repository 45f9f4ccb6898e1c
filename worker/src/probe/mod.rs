//! One probe end to end: a target (one IP) → a [`TargetRecord`], and a list of
//! domains → [`DomainRecord`]s with their targets embedded (DESIGN §2–§4).
//!
//! Targets are deduplicated by IP across all domains of a run: an MX shared
//! by many domains gets one SMTP session, whose record lists every MX name
//! that points at it. Sessions to one IP are sequential (main, then legacy
//! versions); sessions to different IPs run concurrently, bounded.

mod depth;
mod extra;
pub mod pace;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::{
    Anomaly, DnsResult, DomainName, DomainRecord, HandshakeFailure, Outcome, Phase, SuiteChoice,
    TargetRecord, VersionSupport,
};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::config::{is_public, ProbeConfig};
use crate::dns::MxResolver;
use crate::security::checks::{DomainFacts, PolicyRoots, SecurityChecks, SecuritySetupError};
use crate::security::mtasts::mx_tls_facts;
use crate::smtp::dialogue::{End, ExpectGreeting, Transcript};
use crate::smtp::driver::{self, record_timing, Conn, Driven};
use crate::tls::first_flight;
use crate::tls::handshake::{HandshakeError, TlsContext, Versions};
use crate::tls::legacy::LegacyVersion;
use pace::SessionPace;

/// Most extra sessions per IP to learn the certificate of other MX names
/// (SNI) behind it; further names are recorded `not_checked`.
pub const MAX_NAME_SESSIONS: usize = 3;

/// What every probe of a run shares.
#[derive(Debug, Clone)]
pub struct Prober {
    pub config: Arc<ProbeConfig>,
    pub tls: TlsContext,
    /// Built from `config.security` by [`Self::with_checks`]; `None` = off.
    pub security: Option<Arc<SecurityChecks>>,
    /// Awaited before every session after a target's first (legacy
    /// versions, a certificate per name, the first flight); `None` = none.
    pub pace: Option<Arc<dyn SessionPace>>,
}

impl Prober {
    /// A prober without the security checks (whatever `config.security` says).
    pub fn new(config: ProbeConfig, tls: TlsContext) -> Self {
        Self {
            config: Arc::new(config),
            tls,
            security: None,
            pace: None,
        }
    }

    /// The same prober, pacing every extra session to an IP by `pace`.
    #[must_use]
    pub fn with_pace(mut self, pace: Arc<dyn SessionPace>) -> Self {
        self.pace = Some(pace);
        self
    }

    /// A prober running the security checks when `config.security` is set;
    /// the MTA-STS policy fetch trusts `roots`.
    pub fn with_checks(
        config: ProbeConfig,
        tls: TlsContext,
        roots: PolicyRoots<'_>,
    ) -> Result<Self, SecuritySetupError> {
        let security = match &config.security {
            Some(security) => Some(Arc::new(SecurityChecks::new(security, &config, roots)?)),
            None => None,
        };
        Ok(Self {
            config: Arc::new(config),
            tls,
            security,
            pace: None,
        })
    }

    /// Probe one IP. `mx_names` are every MX name pointing at it (the first
    /// is the SNI). Never fails: the outcome says what happened.
    pub async fn probe_target(&self, ip: IpAddr, mx_names: Vec<String>) -> TargetRecord {
        let started = Instant::now();
        let mut record = TargetRecord::new(ip, self.config.port, mx_names);
        // Reverse DNS asks only DNS: it runs beside the session, for every IP,
        // and is aborted with the probe if the probe is dropped (cancelled).
        let ptr = self.security.clone().map(|checks| {
            AbortOnDropHandle::new(tokio::spawn(async move { checks.reverse(ip).await }))
        });
        if !self.config.allow_private && !is_public(ip) {
            record.outcome = Outcome::Skipped;
            record.detail = Some("not a public address (pass --allow-private to probe it)".into());
        } else {
            let main = self.main_session(&mut record).await;
            if main.starttls_accepted {
                self.name_sessions(&mut record).await;
            }
            // The depth probe's first hellos per version are the version
            // probes: with it, the legacy sessions are not opened twice.
            let depth = self.config.depth.extra_sessions();
            if self.config.legacy && !depth && main.starttls_accepted {
                self.legacy_sessions(&mut record).await;
            }
            if depth && main.starttls_accepted {
                self.depth_sessions(&mut record).await;
            }
            if let (Some(checks), Some(chain)) = (&self.security, &main.chain_der) {
                record.dane = checks.dane(&record.mx_names, chain).await;
            }
            record.timings_ms.total = millis(started.elapsed());
        }
        if let Some(ptr) = ptr {
            // A panicked lookup leaves `ptr` absent rather than failing the probe.
            record.ptr = ptr.await.ok();
        }
        record.findings = mxscope_common::findings::derive(&record);
        record
    }

    async fn main_session(&self, record: &mut TargetRecord) -> MainSession {
        let cfg = &self.config;
        let mut result = MainSession::default();
        let deadline = Instant::now() + cfg.timeouts.session;
        let addr = SocketAddr::new(record.ip, cfg.port);
        let mut transcript = Transcript::default();
        let connect_started = Instant::now();
        record.sessions += 1;
        let stream = match driver::connect(addr, cfg.bind, cfg.timeouts.connect, deadline).await {
            Ok(stream) => stream,
            Err(end) => {
                finish(record, end, transcript);
                return result;
            }
        };
        record.timings_ms.connect = Some(millis(connect_started.elapsed()));
        let mut conn = Conn::new(stream, cfg.limits, deadline);
        let greeting = ExpectGreeting::start(cfg.ehlo_name.clone());
        let after = match conn
            .drive(
                greeting,
                &mut transcript,
                &cfg.timeouts,
                &mut record.timings_ms,
            )
            .await
        {
            Driven::Done(end) => {
                if end.send_quit {
                    conn.quit(cfg.timeouts.command).await;
                }
                finish(record, end, transcript);
                return result;
            }
            Driven::StartTls(after) => after,
        };
        result.starttls_accepted = true;
        if !conn.take_injected().is_empty() {
            transcript.anomaly(Anomaly::PreTlsInjection);
        }
        let sni = record
            .mx_names
            .first()
            .cloned()
            .unwrap_or_else(|| record.ip.to_string());
        let handshake_started = Instant::now();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let handshake = self
            .tls
            .handshake(
                conn.stream,
                &sni,
                &record.mx_names,
                Versions::Modern,
                cfg.timeouts.handshake.min(remaining),
            )
            .await;
        record_timing(
            &mut record.timings_ms,
            Phase::TlsHandshake,
            handshake_started.elapsed(),
        );
        let (tls_stream, facts) = match handshake {
            Ok(ok) => ok,
            Err(error) => {
                let end = End {
                    outcome: Outcome::StarttlsHandshakeFailed,
                    phase: Phase::TlsHandshake,
                    detail: Some(error.detail.clone()),
                    send_quit: false,
                };
                finish(record, end, transcript);
                record.handshake_failure = Some(error.kind);
                record.handshake_alert = error.alert.clone();
                if error.worth_first_flight() {
                    result.chain_der = self.first_flight_session(record, &sni, &error).await;
                }
                return result;
            }
        };
        result.chain_der = Some(
            tls_stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
        );
        if facts.version == "TLSv1.3" {
            record.protocols.tls1_3 = VersionSupport::Supported;
            record
                .protocol_suites
                .insert("tls1_3".into(), SuiteChoice::new(&facts.cipher));
        } else if facts.version == "TLSv1.2" {
            record.protocols.tls1_2 = VersionSupport::Supported;
            record.protocols.tls1_3 = VersionSupport::NotSupported;
            record
                .protocol_suites
                .insert("tls1_2".into(), SuiteChoice::new(&facts.cipher));
        }
        record.tls = Some(facts);
        let mut conn = Conn {
            stream: tls_stream,
            parser: conn.parser,
            deadline,
        };
        let (command, state) = after.start(&cfg.ehlo_name);
        let end = match conn.send(&command, cfg.timeouts.command).await {
            Err(e) => e.into_end(Phase::EhloTls),
            Ok(()) => match conn
                .drive(
                    state,
                    &mut transcript,
                    &cfg.timeouts,
                    &mut record.timings_ms,
                )
                .await
            {
                Driven::Done(end) => end,
                Driven::StartTls(_) => End {
                    outcome: Outcome::ProtocolError,
                    phase: Phase::EhloTls,
                    detail: Some("dialogue asked for TLS twice".into()),
                    send_quit: false,
                },
            },
        };
        // The TLS session is up: whatever the post-TLS EHLO did, STARTTLS worked.
        let end = if end.outcome == Outcome::StarttlsOk {
            end
        } else {
            transcript.anomaly(Anomaly::EhloTlsFailed);
            End {
                outcome: Outcome::StarttlsOk,
                phase: Phase::Done,
                detail: end.detail,
                send_quit: end.send_quit,
            }
        };
        if end.send_quit {
            conn.quit(cfg.timeouts.command).await;
        }
        finish(record, end, transcript);
        result
    }

    /// rustls could not complete: read the facts from the server's first
    /// flight in a fresh session (DESIGN §4). The record keeps its outcome
    /// (`starttls_handshake_failed`, with `handshake_failure`) and gains
    /// `tls` facts with `source: first_flight` and the `modern_tls_failed`
    /// anomaly. Returns the chain (for DANE) when one was read.
    async fn first_flight_session(
        &self,
        record: &mut TargetRecord,
        sni: &str,
        modern: &HandshakeError,
    ) -> Option<Vec<Vec<u8>>> {
        record.sessions += 1;
        let mut conn = self.open_after_starttls(record.ip).await.ok()?;
        let remaining = conn.deadline.saturating_duration_since(Instant::now());
        let timeout = self.config.timeouts.handshake.min(remaining);
        let flight = match first_flight::read(&mut conn.stream, Some(sni), timeout).await {
            Ok(flight) => flight,
            Err(error) => {
                let detail = record.detail.take().unwrap_or_default();
                record.detail = Some(format!("{detail}; first flight: {}", error.detail));
                return None;
            }
        };
        let facts = flight.facts(&self.tls, sni, &record.mx_names);
        if !record.anomalies.contains(&Anomaly::ModernTlsFailed) {
            record.anomalies.push(Anomaly::ModernTlsFailed);
        }
        if let Some(version) = legacy_version(flight.version) {
            *protocol_slot(record, version) = VersionSupport::Supported;
            record
                .protocol_suites
                .insert(version.key().into(), SuiteChoice::new(&facts.cipher));
            // The hello offered TLS 1.2: a server choosing less has no 1.2.
            if version != LegacyVersion::Tls1_2 {
                record.protocols.tls1_2 = VersionSupport::NotSupported;
            }
        }
        // rustls offered TLS 1.3 with every standard suite and group; a
        // server that refused it (or offered nothing rustls could use) and
        // then chose 1.2 or less for the permissive hello has no TLS 1.3.
        if matches!(
            modern.kind,
            HandshakeFailure::AlertReceived | HandshakeFailure::NoCommonParameters
        ) {
            record.protocols.tls1_3 = VersionSupport::NotSupported;
        }
        record.tls = Some(facts);
        Some(flight.chain)
    }

    /// Resolve `domains`, probe every unique IP once (bounded by
    /// `concurrency`), and return one record per domain in input order.
    /// `progress` is called after each finished target with (done, total).
    pub async fn probe_domains(
        &self,
        resolver: &MxResolver,
        domains: &[DomainName],
        concurrency: usize,
        progress: impl Fn(Progress),
    ) -> Vec<DomainRecord> {
        let concurrency = concurrency.max(1);
        // Resolve phase: at most `concurrency` tasks exist at once, so a long
        // list costs memory for its results, not for a task per domain.
        let mut resolving = JoinSet::new();
        let mut dns: Vec<Option<DnsResult>> = vec![None; domains.len()];
        let mut facts: Vec<Option<DomainFacts>> = vec![None; domains.len()];
        let mut resolved = 0;
        let mut pending = domains.iter().enumerate();
        loop {
            while resolving.len() < concurrency {
                let Some((index, domain)) = pending.next() else {
                    break;
                };
                let resolver = resolver.clone();
                let name = domain.as_str().to_string();
                let security = self.security.clone();
                resolving.spawn(async move {
                    let result = resolver.resolve(&name).await;
                    let facts = match security {
                        Some(checks) => Some(checks.domain(&name, &result).await),
                        None => None,
                    };
                    (index, result, facts)
                });
            }
            let Some(joined) = resolving.join_next().await else {
                break;
            };
            if let Ok((index, result, domain_facts)) = joined {
                if let Some(slot) = dns.get_mut(index) {
                    *slot = Some(result);
                }
                if let Some(slot) = facts.get_mut(index) {
                    *slot = domain_facts;
                }
            }
            resolved += 1;
            progress(Progress::Resolved {
                done: resolved,
                total: domains.len(),
            });
        }
        // Target dedup: one target per IP, with every MX name behind it.
        let targets = mxscope_common::targets_of(dns.iter().flatten());
        // Probe phase.
        let total = targets.len();
        let mut probing = JoinSet::new();
        let mut results: BTreeMap<IpAddr, TargetRecord> = BTreeMap::new();
        let mut pending = targets.into_iter();
        loop {
            while probing.len() < concurrency {
                let Some((ip, names)) = pending.next() else {
                    break;
                };
                let prober = self.clone();
                probing.spawn(
                    async move { prober.probe_target(ip, names.into_iter().collect()).await },
                );
            }
            let Some(joined) = probing.join_next().await else {
                break;
            };
            if let Ok(record) = joined {
                results.insert(record.ip, record);
            }
            progress(Progress::Probed {
                done: results.len(),
                total,
            });
        }
        // Join.
        domains
            .iter()
            .zip(dns)
            .zip(facts)
            .map(|((domain, result), facts)| {
                let result = result.unwrap_or_else(|| {
                    DnsResult::failed(mxscope_common::DnsStatus::Error, "resolver task failed")
                });
                let mut record = DomainRecord::new(domain.as_str().to_string(), result);
                record.domain_unicode = domain.unicode().map(str::to_string);
                let ips: BTreeSet<IpAddr> = record
                    .dns
                    .mx
                    .iter()
                    .flat_map(|mx| mx.addresses.iter().copied())
                    .collect();
                record.targets = ips
                    .iter()
                    .filter_map(|ip| results.get(ip).cloned())
                    .collect();
                if let Some(facts) = facts {
                    let mx_names: Vec<String> =
                        record.dns.mx.iter().map(|mx| mx.exchange.clone()).collect();
                    // Only this domain's MX names: a shared target lists others too.
                    let per_mx_tls: Vec<_> = record
                        .targets
                        .iter()
                        .flat_map(mx_tls_facts)
                        .filter(|fact| mx_names.contains(&fact.mx))
                        .collect();
                    record.security = Some(facts.finish(&mx_names, &per_mx_tls));
                }
                record
            })
            .collect()
    }
}

/// Progress of [`Prober::probe_domains`].
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Resolved { done: usize, total: usize },
    Probed { done: usize, total: usize },
}

#[derive(Debug, Default)]
struct MainSession {
    starttls_accepted: bool,
    /// The chain the server presented (leaf first, DER), when TLS came up.
    chain_der: Option<Vec<Vec<u8>>>,
}

/// The hand-probed version a wire version is, if any.
fn legacy_version(wire: u16) -> Option<LegacyVersion> {
    LegacyVersion::ALL.into_iter().find(|v| v.wire() == wire)
}

pub(super) fn protocol_slot(
    record: &mut TargetRecord,
    version: LegacyVersion,
) -> &mut VersionSupport {
    match version {
        LegacyVersion::Ssl3 => &mut record.protocols.ssl3,
        LegacyVersion::Tls1_0 => &mut record.protocols.tls1_0,
        LegacyVersion::Tls1_1 => &mut record.protocols.tls1_1,
        LegacyVersion::Tls1_2 => &mut record.protocols.tls1_2,
    }
}

fn finish(record: &mut TargetRecord, end: End, transcript: Transcript) {
    record.outcome = end.outcome;
    record.phase = end.phase;
    record.detail = end.detail;
    record.greeting = transcript.greeting;
    record.ehlo = transcript.ehlo;
    record.helo_fallback = transcript.helo_fallback;
    record.starttls_reply = transcript.starttls_reply;
    record.ehlo_tls = transcript.ehlo_tls;
    record.anomalies = transcript.anomalies;
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
