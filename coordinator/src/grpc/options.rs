//! Scan options and statuses ⇄ wire.

use mxscope_common::proto;

use crate::model::ScanOptions;
use crate::service::{ScanStatus, TaskCounts};

impl From<&ScanOptions> for proto::ProbeOptions {
    fn from(o: &ScanOptions) -> Self {
        Self {
            ehlo_name: o.ehlo_name.clone(),
            port: u32::from(o.port),
            legacy: o.legacy,
            timeout_connect_ms: o.timeout_connect_ms,
            timeout_greeting_ms: o.timeout_greeting_ms,
            timeout_command_ms: o.timeout_command_ms,
            timeout_handshake_ms: o.timeout_handshake_ms,
            timeout_session_ms: o.timeout_session_ms,
            resolvers: o.resolvers.clone(),
            ca_pem: o.ca_pem.clone().unwrap_or_default(),
            allow_private: o.allow_private,
            security: o.security,
            trust_anchor: o.trust_anchor_pem.clone().unwrap_or_default(),
            exclusions: o.exclusions.clone(),
            retry_attempts: o.retry_attempts,
            retry_delay_ms: o.retry_delay_ms,
            ip_gap_ms: o.ip_gap_ms,
            network_rate_milli: o.network_rate_milli,
            vantage_rate_milli: o.vantage_rate_milli,
        }
    }
}

impl TryFrom<proto::ProbeOptions> for ScanOptions {
    type Error = String;

    fn try_from(o: proto::ProbeOptions) -> Result<Self, Self::Error> {
        let port = u16::try_from(o.port).map_err(|_| format!("port {} out of range", o.port))?;
        for resolver in &o.resolvers {
            resolver
                .parse::<std::net::SocketAddr>()
                .map_err(|_| format!("resolver {resolver:?} is not IP:PORT"))?;
        }
        if !o.ehlo_name.is_empty() {
            mxscope_common::EhloName::parse(&o.ehlo_name)
                .map_err(|e| format!("EHLO name {:?}: {e}", o.ehlo_name))?;
        }
        Ok(Self {
            ehlo_name: o.ehlo_name,
            port: if port == 0 { 25 } else { port },
            legacy: o.legacy,
            timeout_connect_ms: o.timeout_connect_ms,
            timeout_greeting_ms: o.timeout_greeting_ms,
            timeout_command_ms: o.timeout_command_ms,
            timeout_handshake_ms: o.timeout_handshake_ms,
            timeout_session_ms: o.timeout_session_ms,
            resolvers: o.resolvers,
            ca_pem: (!o.ca_pem.is_empty()).then_some(o.ca_pem),
            allow_private: o.allow_private,
            security: o.security,
            trust_anchor_pem: (!o.trust_anchor.is_empty()).then_some(o.trust_anchor),
            exclusions: mxscope_common::exclusions::Exclusions::from_lines(&o.exclusions)
                .map_err(|e| format!("exclusions: {e}"))?
                .to_lines(),
            retry_attempts: o.retry_attempts,
            retry_delay_ms: o.retry_delay_ms,
            ip_gap_ms: o.ip_gap_ms,
            network_rate_milli: o.network_rate_milli,
            vantage_rate_milli: o.vantage_rate_milli,
        })
    }
}

impl From<TaskCounts> for proto::TaskCounts {
    fn from(c: TaskCounts) -> Self {
        Self {
            total: c.total,
            pending: c.pending,
            leased: c.leased,
            done: c.done,
            failed: c.failed,
        }
    }
}

impl From<proto::TaskCounts> for TaskCounts {
    fn from(c: proto::TaskCounts) -> Self {
        Self {
            total: c.total,
            pending: c.pending,
            leased: c.leased,
            done: c.done,
            failed: c.failed,
        }
    }
}

impl From<&ScanStatus> for proto::ScanStatus {
    fn from(s: &ScanStatus) -> Self {
        Self {
            scan_id: s.meta.id.clone(),
            name: s.meta.name.clone(),
            labels: s.meta.labels.clone().into_iter().collect(),
            vantages: s.meta.vantages.clone(),
            state: s.meta.state.as_str().to_string(),
            created_unix_ms: s.meta.created_ms,
            finished_unix_ms: s.meta.finished_ms.unwrap_or(0),
            domains: s.meta.domains,
            resolve: Some(s.resolve.into()),
            probe: Some(s.probe.into()),
            domain_records: s.domain_records,
            target_records: s.target_records,
            failed_items: s.failed_items,
            tallies: s
                .tallies
                .iter()
                .map(|(vantage, tally)| proto::VantageTally {
                    vantage: vantage.clone(),
                    json: serde_json::to_string(tally).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_round_trip() {
        let options = ScanOptions {
            port: 25,
            security: true,
            trust_anchor_pem: Some(". 3600 IN DNSKEY 257 3 13 AAAA\n".into()),
            ..ScanOptions::default()
        };
        let wire = proto::ProbeOptions::from(&options);
        assert!(wire.security);
        assert_eq!(wire.trust_anchor, ". 3600 IN DNSKEY 257 3 13 AAAA\n");
        assert_eq!(ScanOptions::try_from(wire), Ok(options));
        let off = ScanOptions::try_from(proto::ProbeOptions::default()).unwrap();
        assert!(!off.security);
        assert_eq!(off.trust_anchor_pem, None);
    }

    #[test]
    fn ehlo_name_is_parsed_at_the_edge() {
        let options = |name: &str| proto::ProbeOptions {
            ehlo_name: name.into(),
            ..Default::default()
        };
        let error = ScanOptions::try_from(options("a.example\nQUIT")).unwrap_err();
        assert!(error.contains("line feed"), "{error}");
        assert_eq!(ScanOptions::try_from(options("")).unwrap().ehlo_name, "");
        let ok = ScanOptions::try_from(options("[IPv6:::1]")).unwrap();
        assert_eq!(ok.ehlo_name, "[IPv6:::1]");
    }

    #[test]
    fn stored_options_without_security_fields_load() {
        let json = r#"{"ehlo_name":"x","port":25,"legacy":false,"timeout_connect_ms":0,
            "timeout_greeting_ms":0,"timeout_command_ms":0,"timeout_handshake_ms":0,
            "timeout_session_ms":0,"resolvers":[],"ca_pem":null,"allow_private":false}"#;
        let options: ScanOptions = serde_json::from_str(json).unwrap();
        assert!(!options.security);
    }
}
