//! proto ⇄ domain conversions. `TryFrom` is where bad input from the wire
//! is rejected; nothing else in `common` touches generated types.
//!
//! Layout: this file converts probe options, targets and records; [`task`]
//! the worker service's tasks, leases and result batches.

pub mod task;

pub use task::{batch_to_proto, lease_request, task_to_proto, TaskError};

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::options::ScanOptions;
use crate::politeness::exclusions::Exclusions;
use crate::record::{Delivered, DepthLevel, Record};
use crate::wire::proto;
use crate::wire::task::Target;
use crate::{DomainName, EhloName, InvalidEhloName};

/// A wire value that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A record's JSON is invalid; the sender has a bug or a different schema.
    #[error("record {index}: {reason}")]
    Record { index: usize, reason: String },
    /// An IP address field does not parse.
    #[error("invalid IP address {0:?}")]
    Ip(String),
    /// A required field is missing.
    #[error("missing field {0}")]
    Missing(&'static str),
}

/// Probe options from the wire that no side may use: the coordinator
/// refuses them at submission, a worker refuses the task that carries them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOptions {
    /// The port does not fit in 16 bits.
    #[error("port {0} out of range")]
    Port(u32),
    /// A resolver is not IP:PORT.
    #[error("resolver {0:?} is not IP:PORT")]
    Resolver(String),
    /// The EHLO name is not an RFC 5321 domain or address literal.
    #[error("EHLO name {name:?}: {reason}")]
    EhloName {
        name: String,
        reason: InvalidEhloName,
    },
    /// The DNSSEC check name is not a domain name.
    #[error("DNSSEC check name {name:?}: {reason}")]
    DnssecCheckName { name: String, reason: String },
    /// An exclusion entry does not parse (the message names it).
    #[error("exclusions: {0}")]
    Exclusions(String),
    /// The TLS depth is not free, classes or suites.
    #[error("{0}")]
    TlsDepth(String),
}

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
            timeout_dns_ms: o.timeout_dns_ms,
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
            dnssec_check_name: o.dnssec_check_name.clone().unwrap_or_default(),
            tls_depth: o.tls_depth.name().to_owned(),
            tls_depth_budget: o.tls_depth_budget,
        }
    }
}

/// The one validator of probe options, for the coordinator (a submission)
/// and the worker (a lease) alike: port 0 becomes 25, names and addresses
/// are trimmed and parsed, blank PEM texts mean "none", exclusion lines are
/// parsed and normalised.
impl TryFrom<proto::ProbeOptions> for ScanOptions {
    type Error = InvalidOptions;

    fn try_from(o: proto::ProbeOptions) -> Result<Self, Self::Error> {
        let port = match o.port {
            0 => crate::options::defaults::PORT,
            port => u16::try_from(port).map_err(|_| InvalidOptions::Port(port))?,
        };
        let resolvers = o
            .resolvers
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<SocketAddr>()
                    .map(|addr| addr.to_string())
                    .map_err(|_| InvalidOptions::Resolver(text.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ehlo_name = match o.ehlo_name.trim() {
            "" => String::new(),
            name => EhloName::parse(name)
                .map_err(|reason| InvalidOptions::EhloName {
                    name: o.ehlo_name.clone(),
                    reason,
                })?
                .to_string(),
        };
        let text = |t: String| Some(t).filter(|t| !t.trim().is_empty());
        let dnssec_check_name = match o.dnssec_check_name.trim() {
            "" => None,
            name => Some(
                DomainName::parse(name)
                    .map_err(|reason| InvalidOptions::DnssecCheckName {
                        name: o.dnssec_check_name.clone(),
                        reason,
                    })?
                    .as_str()
                    .to_string(),
            ),
        };
        let tls_depth = match o.tls_depth.trim() {
            "" => DepthLevel::default(),
            level => level.parse().map_err(InvalidOptions::TlsDepth)?,
        };
        Ok(Self {
            ehlo_name,
            port,
            tls_depth,
            tls_depth_budget: o.tls_depth_budget,
            legacy: o.legacy,
            timeout_connect_ms: o.timeout_connect_ms,
            timeout_greeting_ms: o.timeout_greeting_ms,
            timeout_command_ms: o.timeout_command_ms,
            timeout_handshake_ms: o.timeout_handshake_ms,
            timeout_session_ms: o.timeout_session_ms,
            timeout_dns_ms: o.timeout_dns_ms,
            resolvers,
            ca_pem: text(o.ca_pem),
            allow_private: o.allow_private,
            security: o.security,
            trust_anchor_pem: text(o.trust_anchor),
            exclusions: Exclusions::from_lines(&o.exclusions)
                .map_err(|e| InvalidOptions::Exclusions(e.to_string()))?
                .to_lines(),
            retry_attempts: o.retry_attempts,
            retry_delay_ms: o.retry_delay_ms,
            ip_gap_ms: o.ip_gap_ms,
            network_rate_milli: o.network_rate_milli,
            vantage_rate_milli: o.vantage_rate_milli,
            dnssec_check_name,
        })
    }
}

impl ScanOptions {
    /// The EHLO name to send: the scan's, else `default`. The text was
    /// checked where the options entered; a stored value that no longer
    /// parses is refused here all the same.
    pub fn ehlo_name_or(&self, default: EhloName) -> Result<EhloName, InvalidOptions> {
        match self.ehlo_name.trim() {
            "" => Ok(default),
            name => EhloName::parse(name).map_err(|reason| InvalidOptions::EhloName {
                name: self.ehlo_name.clone(),
                reason,
            }),
        }
    }

    /// The resolvers as addresses.
    pub fn resolver_addrs(&self) -> Result<Vec<SocketAddr>, InvalidOptions> {
        self.resolvers
            .iter()
            .map(|text| {
                text.trim()
                    .parse()
                    .map_err(|_| InvalidOptions::Resolver(text.clone()))
            })
            .collect()
    }

    /// The exclusion entries as a list.
    pub fn exclusion_list(&self) -> Result<Exclusions, InvalidOptions> {
        Exclusions::from_lines(&self.exclusions)
            .map_err(|e| InvalidOptions::Exclusions(e.to_string()))
    }
}

/// A probe task's targets that no worker may run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTargets {
    /// A probe target is not an IP address.
    #[error("target {0:?} is not an IP address")]
    Target(String),
    /// The same IP twice in one probe task (sessions to one IP must be sequential).
    #[error("target {0} appears twice")]
    DuplicateTarget(String),
}

/// A probe task's targets: distinct IPs, each with its MX names.
pub fn targets_from_proto(targets: Vec<proto::ProbeTarget>) -> Result<Vec<Target>, InvalidTargets> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let ip = target
            .ip
            .parse()
            .map_err(|_| InvalidTargets::Target(target.ip.clone()))?;
        if !seen.insert(ip) {
            return Err(InvalidTargets::DuplicateTarget(target.ip));
        }
        out.push(Target {
            ip,
            mx_names: target.mx_names,
        });
    }
    Ok(out)
}

/// A probe target for the wire.
pub fn target_to_proto(target: Target) -> proto::ProbeTarget {
    proto::ProbeTarget {
        ip: target.ip.to_string(),
        mx_names: target.mx_names,
    }
}

/// Parse a batch of JSON records, keeping each one's text.
pub fn records_from_json(json: Vec<String>) -> Result<Vec<Delivered<Record>>, ConvertError> {
    json.into_iter()
        .enumerate()
        .map(|(index, text)| {
            Delivered::parse(text).map_err(|reason| ConvertError::Record { index, reason })
        })
        .collect()
}

impl TryFrom<&proto::ResultRecord> for Record {
    type Error = ConvertError;

    fn try_from(value: &proto::ResultRecord) -> Result<Self, Self::Error> {
        Self::from_json(&value.json).map_err(|reason| ConvertError::Record { index: 0, reason })
    }
}

impl From<&Record> for proto::ResultRecord {
    fn from(record: &Record) -> Self {
        Self {
            json: record.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DnsResult, DnsStatus, DomainRecord, TargetRecord};

    #[test]
    fn records_roundtrip_through_json() {
        let domain = Record::Domain(DomainRecord::new(
            "a.example".into(),
            DnsResult::failed(DnsStatus::Nxdomain, "no"),
        ));
        let target = Record::Target(TargetRecord::new("192.0.2.1".parse().unwrap(), 25, vec![]));
        for record in [domain, target] {
            let wire = proto::ResultRecord::from(&record);
            assert_eq!(Record::try_from(&wire).unwrap(), record);
        }
        let bad = records_from_json(vec!["{\"kind\":\"other\"}".to_string()]).unwrap_err();
        assert!(bad.to_string().contains("unknown record kind"));
        assert!(records_from_json(vec!["not json".to_string()]).is_err());
    }

    fn options() -> ScanOptions {
        ScanOptions {
            ehlo_name: "scanner.example".into(),
            port: 2525,
            legacy: true,
            timeout_connect_ms: 1500,
            timeout_greeting_ms: 2,
            timeout_command_ms: 3,
            timeout_handshake_ms: 4,
            timeout_session_ms: 5,
            timeout_dns_ms: 6,
            resolvers: vec!["127.0.0.1:5353".into(), "[::1]:53".into()],
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            allow_private: true,
            security: true,
            trust_anchor_pem: Some(". 3600 IN DNSKEY 257 3 13 AAAA\n".into()),
            exclusions: Exclusions::parse("192.0.2.0/24\ndomain:example.org\n")
                .unwrap()
                .to_lines(),
            retry_attempts: 2,
            retry_delay_ms: 7,
            ip_gap_ms: Some(0),
            network_rate_milli: Some(500),
            vantage_rate_milli: 9,
            dnssec_check_name: Some("sec.test".into()),
            tls_depth: DepthLevel::Suites,
            tls_depth_budget: 12,
        }
    }

    #[test]
    fn a_bad_tls_depth_is_refused_and_empty_is_free() {
        let mut wire = proto::ProbeOptions::from(&options());
        wire.tls_depth = "deep".into();
        let err = ScanOptions::try_from(wire.clone()).unwrap_err();
        assert!(err.to_string().contains("unknown TLS depth"), "{err}");
        wire.tls_depth = String::new();
        let options = ScanOptions::try_from(wire).unwrap();
        assert_eq!(options.tls_depth, DepthLevel::Free);
        assert!(options.legacy_versions(), "legacy was asked for");
    }

    #[test]
    fn options_round_trip() {
        let options = options();
        let wire = proto::ProbeOptions::from(&options);
        assert_eq!(wire.port, 2525);
        assert_eq!(wire.trust_anchor, ". 3600 IN DNSKEY 257 3 13 AAAA\n");
        assert_eq!(ScanOptions::try_from(wire), Ok(options));
        let default = ScanOptions {
            port: 25,
            ..ScanOptions::default()
        };
        let wire = proto::ProbeOptions::from(&default);
        assert_eq!(ScanOptions::try_from(wire), Ok(default));
    }

    #[test]
    fn zero_and_blank_mean_the_default() {
        let off = ScanOptions::try_from(proto::ProbeOptions::default()).unwrap();
        assert_eq!(off.port, 25);
        assert_eq!(off.ehlo_name, "");
        assert!(!off.security);
        assert_eq!((off.ca_pem, off.trust_anchor_pem), (None, None));
        let blank = ScanOptions::try_from(proto::ProbeOptions {
            ehlo_name: " scanner.example ".into(),
            resolvers: vec![" 127.0.0.1:53 ".into()],
            trust_anchor: " \n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(blank.ehlo_name, "scanner.example");
        assert_eq!(blank.resolvers, ["127.0.0.1:53"]);
        assert_eq!(blank.trust_anchor_pem, None);
        let local = EhloName::parse("worker.example").unwrap();
        assert_eq!(off_default_name(&local), local);
    }

    fn off_default_name(local: &EhloName) -> EhloName {
        ScanOptions::default().ehlo_name_or(local.clone()).unwrap()
    }

    #[test]
    fn each_bad_option_is_refused() {
        let refused = |wire: proto::ProbeOptions| ScanOptions::try_from(wire).unwrap_err();
        assert_eq!(
            refused(proto::ProbeOptions {
                port: 70_000,
                ..Default::default()
            }),
            InvalidOptions::Port(70_000)
        );
        assert_eq!(
            refused(proto::ProbeOptions {
                resolvers: vec!["dns.example".into()],
                ..Default::default()
            }),
            InvalidOptions::Resolver("dns.example".into())
        );
        // The smuggled command is refused on both sides: one validator.
        let smuggled = refused(proto::ProbeOptions {
            ehlo_name: "scanner.example\r\nMAIL FROM:<x@example.org>".into(),
            ..Default::default()
        });
        assert!(matches!(smuggled, InvalidOptions::EhloName { .. }));
        let lf = refused(proto::ProbeOptions {
            ehlo_name: "a.example\nQUIT".into(),
            ..Default::default()
        });
        assert!(lf.to_string().contains("line feed"), "{lf}");
        let ok = ScanOptions::try_from(proto::ProbeOptions {
            ehlo_name: "[IPv6:::1]".into(),
            ..Default::default()
        });
        assert_eq!(ok.unwrap().ehlo_name, "[IPv6:::1]");
        let exclusions = refused(proto::ProbeOptions {
            exclusions: vec!["300.1.2.3/8".into()],
            ..Default::default()
        });
        assert!(
            matches!(exclusions, InvalidOptions::Exclusions(_)),
            "{exclusions}"
        );
        let check_name = refused(proto::ProbeOptions {
            dnssec_check_name: "not a name".into(),
            ..Default::default()
        });
        assert!(
            matches!(check_name, InvalidOptions::DnssecCheckName { .. }),
            "{check_name}"
        );
        let stored = ScanOptions {
            ehlo_name: "bad name".into(),
            resolvers: vec!["x".into()],
            ..ScanOptions::default()
        };
        assert!(stored.ehlo_name_or(EhloName::default()).is_err());
        assert!(stored.resolver_addrs().is_err());
    }

    #[test]
    fn targets_are_distinct_addresses() {
        let wire = |ips: &[&str]| {
            ips.iter()
                .map(|ip| {
                    target_to_proto(Target {
                        ip: ip.parse().unwrap(),
                        mx_names: vec!["mx.example".into()],
                    })
                })
                .collect::<Vec<_>>()
        };
        let targets = targets_from_proto(wire(&["127.0.0.1", "::1"])).unwrap();
        assert_eq!(targets[1].ip, "::1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(targets[0].mx_names, ["mx.example"]);
        assert_eq!(
            targets_from_proto(wire(&["127.0.0.1", "127.0.0.1"])),
            Err(InvalidTargets::DuplicateTarget("127.0.0.1".into()))
        );
        let name = vec![proto::ProbeTarget {
            ip: "mx.example".into(),
            mx_names: vec![],
        }];
        assert_eq!(
            targets_from_proto(name),
            Err(InvalidTargets::Target("mx.example".into()))
        );
    }
}
