//! A probe's further sessions to its IP after the main one, each waiting
//! for its turn ([`super::pace`]): a certificate per MX name and the legacy
//! versions, and the way every one of them opens (up to STARTTLS's 220).

use std::net::{IpAddr, SocketAddr};

use mxscope_common::{
    NameCertificate, NameCheck, SuiteChoice, TargetRecord, Tested, TlsDepth, TlsSource,
    VersionSupport,
};
use tokio::time::Instant;

use super::{protocol_slot, Prober, MAX_NAME_SESSIONS};
use crate::smtp::dialogue::{End, ExpectGreeting, Transcript};
use crate::smtp::driver::{self, Conn, Driven};
use crate::tls::first_flight;
use crate::tls::handshake::Versions;
use crate::tls::legacy::{self, LegacyVersion};

impl Prober {
    /// A certificate per MX name (DESIGN §4): for each other name behind
    /// this IP that the first certificate does not cover, one more session
    /// with that name as SNI (sequential, at most [`MAX_NAME_SESSIONS`]).
    pub(super) async fn name_sessions(&self, record: &mut TargetRecord) {
        let Some(main) = record.tls.clone() else {
            return;
        };
        let main_leaf = main.chain.first().map(|c| c.sha256.clone());
        let main_subject = main.chain.first().map(|c| c.subject.clone());
        let mut extra = 0;
        let names = record.mx_names.clone();
        for (index, name) in names.iter().enumerate() {
            let covered = main.name_match.get(name).copied().unwrap_or(false);
            let from_main = |check| NameCertificate {
                name_match: Some(covered),
                check,
                leaf_sha256: main_leaf.clone(),
                leaf_subject: main_subject.clone(),
                verification: Some(main.verification),
            };
            let entry = if index == 0 {
                from_main(NameCheck::MainSession)
            } else if covered {
                from_main(NameCheck::CoveredByMain)
            } else if extra >= MAX_NAME_SESSIONS {
                from_main(NameCheck::NotChecked)
            } else {
                extra += 1;
                record.sessions += 1;
                match self.name_session(record.ip, name, main.source).await {
                    Some(facts) => NameCertificate {
                        name_match: facts.name_match.get(name).copied(),
                        check: NameCheck::OwnSession,
                        leaf_sha256: facts.chain.first().map(|c| c.sha256.clone()),
                        leaf_subject: facts.chain.first().map(|c| c.subject.clone()),
                        verification: Some(facts.verification),
                    },
                    None => from_main(NameCheck::SessionFailed),
                }
            };
            record.names.insert(name.clone(), entry);
        }
    }

    /// One session with `name` as SNI, the same way the main session got
    /// its facts (a rustls handshake, or the first flight).
    async fn name_session(
        &self,
        ip: IpAddr,
        name: &str,
        source: TlsSource,
    ) -> Option<mxscope_common::TlsFacts> {
        let mut conn = self.open_after_starttls(ip).await.ok()?;
        let remaining = conn.deadline.saturating_duration_since(Instant::now());
        let timeout = self.config.timeouts.handshake.min(remaining);
        let names = [name.to_string()];
        if source == TlsSource::FirstFlight {
            let flight = first_flight::read(&mut conn.stream, Some(name), timeout)
                .await
                .ok()?;
            return Some(flight.facts(&self.tls, name, &names));
        }
        let (_, facts) = self
            .tls
            .handshake(conn.stream, name, &names, Versions::Modern, timeout)
            .await
            .ok()?;
        Some(facts)
    }

    /// SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 by hand-built ClientHello, one
    /// fresh session each; a version already known to be supported (from the
    /// main session or the first flight) is not asked again.
    pub(super) async fn legacy_sessions(&self, record: &mut TargetRecord) {
        let sni = record.mx_names.first().cloned();
        // The newest supported version's ServerHello speaks for the host.
        let mut newest_hello = None;
        for version in LegacyVersion::ALL {
            if *protocol_slot(record, version) == VersionSupport::Supported {
                continue;
            }
            record.sessions += 1;
            let probed = match self.open_after_starttls(record.ip).await {
                Ok(mut conn) => {
                    let remaining = conn.deadline.saturating_duration_since(Instant::now());
                    let timeout = self.config.timeouts.handshake.min(remaining);
                    legacy::probe_version(&mut conn.stream, version, sni.as_deref(), timeout).await
                }
                Err(_) => legacy::Probed {
                    support: VersionSupport::Error,
                    detail: None,
                    hello: None,
                },
            };
            if probed.support == VersionSupport::Supported {
                if let Some(cipher) = probed.detail {
                    record
                        .protocol_suites
                        .insert(version.key().into(), SuiteChoice::new(cipher));
                }
                if version != LegacyVersion::Ssl3 && probed.hello.is_some() {
                    newest_hello = probed.hello;
                }
            }
            *protocol_slot(record, version) = probed.support;
        }
        // Free facts of the raw hellos (no session more): at the `free`
        // level the record's depth holds only these.
        if let Some(pick) = newest_hello {
            let depth = record.tls_depth.get_or_insert_with(TlsDepth::default);
            depth.secure_renegotiation = Tested::from_bool(pick.renegotiation_info);
            depth.extended_master_secret = Tested::from_bool(pick.extended_master_secret);
            depth.compression = Tested::from_bool(pick.compression != 0);
        }
    }

    /// A fresh session up to STARTTLS's 220, for a legacy-version probe, a
    /// certificate per name or the first flight; it waits for its turn
    /// ([`Self::pace`]) first.
    pub(super) async fn open_after_starttls(
        &self,
        ip: IpAddr,
    ) -> Result<Conn<tokio::net::TcpStream>, End> {
        if let Some(pace) = &self.pace {
            pace.turn(ip).await;
        }
        let cfg = &self.config;
        let deadline = Instant::now() + cfg.timeouts.session;
        let addr = SocketAddr::new(ip, cfg.port);
        let stream = driver::connect(addr, cfg.bind, cfg.timeouts.connect, deadline).await?;
        let mut conn = Conn::new(stream, cfg.limits, deadline);
        let mut transcript = Transcript::default();
        let mut timings = Default::default();
        match conn
            .drive(
                ExpectGreeting::start(cfg.ehlo_name.clone()),
                &mut transcript,
                &cfg.timeouts,
                &mut timings,
            )
            .await
        {
            Driven::StartTls(_) => {
                conn.take_injected();
                Ok(conn)
            }
            Driven::Done(end) => {
                if end.send_quit {
                    conn.quit(cfg.timeouts.command).await;
                }
                Err(end)
            }
        }
    }
}
