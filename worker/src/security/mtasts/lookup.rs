//! TXT and address lookups for MTA-STS and TLS-RPT, through the worker's
//! configured name servers (never getaddrinfo, never `/etc/hosts`, no
//! search list), each bounded by a deadline: TXT through hickory, the
//! policy host's addresses through the MX path's own lookup.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use mxscope_common::DnsStatus;

use crate::dns::{
    hickory_resolver, resolver_parts, DnsConfig, DnsSetupError, MxResolver, ResolverParts,
};

/// Longest TXT record kept (its strings concatenated); longer ones are cut.
const MAX_TXT_BYTES: usize = 4096;
/// At most this many TXT records of one name are kept.
const MAX_TXT_RECORDS: usize = 32;

/// A lookup that gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DnsFailure {
    /// `nxdomain` / `nodata` for negative answers, else the failure.
    pub status: DnsStatus,
    pub message: String,
}

impl DnsFailure {
    fn new(status: DnsStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The name (or the records of the type) provably does not exist.
    pub fn is_negative(&self) -> bool {
        matches!(self.status, DnsStatus::Nxdomain | DnsStatus::Nodata)
    }
}

/// TXT and A/AAAA lookups for the policy records.
#[derive(Debug, Clone)]
pub struct PolicyDns {
    /// The TXT lookups.
    resolver: TokioResolver,
    /// The policy host's addresses, looked up as an exchange's are.
    hosts: MxResolver,
    deadline: Duration,
}

impl PolicyDns {
    /// A resolver asking `config.resolvers` (or the name servers of the
    /// system configuration when empty, as [`crate::dns::MxResolver`] does).
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let ResolverParts {
            name_servers,
            mut opts,
            timeout,
            attempts,
        } = resolver_parts(config)?;
        opts.cache_size = 256;
        let resolver = hickory_resolver(name_servers, opts, None).map_err(DnsSetupError::Build)?;
        Ok(Self {
            resolver,
            hosts: MxResolver::new(config)?,
            deadline: timeout * attempts * 2 + Duration::from_millis(500),
        })
    }

    /// The TXT records of `name`, each record's strings concatenated (lossy
    /// UTF-8). NXDOMAIN and NODATA give an empty list.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        let records = match self.lookup(name, RecordType::TXT).await {
            Ok(records) => records,
            Err(failure) if failure.is_negative() => return Ok(Vec::new()),
            Err(failure) => return Err(failure),
        };
        Ok(records
            .iter()
            .filter_map(|data| match data {
                RData::TXT(txt) => {
                    let mut bytes = Vec::new();
                    for part in txt.txt_data.iter() {
                        bytes.extend_from_slice(part);
                    }
                    bytes.truncate(MAX_TXT_BYTES);
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => None,
            })
            .take(MAX_TXT_RECORDS)
            .collect())
    }

    /// The A and AAAA addresses of `name`: the lookup of the MX path
    /// ([`MxResolver::host_addresses`]: its transport, cache, CNAME
    /// following and cap), IPv4 first, deduplicated. NXDOMAIN or NODATA for
    /// both is an error with that status.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        let name = name.trim().trim_end_matches('.');
        self.hosts
            .host_addresses(name)
            .await
            .map_err(|(status, message)| {
                // The words this check has always recorded for each class.
                let message = match status {
                    DnsStatus::Nxdomain => "NXDOMAIN".to_string(),
                    DnsStatus::Nodata => "no A or AAAA record".to_string(),
                    DnsStatus::Servfail => "SERVFAIL".to_string(),
                    DnsStatus::Refused => "REFUSED".to_string(),
                    DnsStatus::Timeout => "timed out".to_string(),
                    _ => message,
                };
                DnsFailure::new(status, message)
            })
    }

    /// One bounded lookup of an exact FQDN: the answer's data.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, DnsFailure> {
        let name = name.trim().trim_end_matches('.');
        let fqdn = Name::from_ascii(format!("{name}."))
            .map_err(|_| DnsFailure::new(DnsStatus::Error, format!("invalid name {name:?}")))?;
        match tokio::time::timeout(self.deadline, self.resolver.lookup(fqdn, rtype)).await {
            Ok(Ok(lookup)) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data.clone())
                .collect()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(DnsFailure::new(DnsStatus::Timeout, "timed out")),
        }
    }
}

fn classify(e: &NetError) -> DnsFailure {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            match *response_code {
                ResponseCode::NXDomain => DnsFailure::new(DnsStatus::Nxdomain, "NXDOMAIN"),
                ResponseCode::NoError => DnsFailure::new(DnsStatus::Nodata, "NODATA"),
                ResponseCode::ServFail => DnsFailure::new(DnsStatus::Servfail, "SERVFAIL"),
                ResponseCode::Refused => DnsFailure::new(DnsStatus::Refused, "REFUSED"),
                code => DnsFailure::new(DnsStatus::Error, format!("response code {code}")),
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            DnsFailure::new(DnsStatus::Servfail, "SERVFAIL")
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            DnsFailure::new(DnsStatus::Refused, "REFUSED")
        }
        NetError::Timeout => DnsFailure::new(DnsStatus::Timeout, "timed out"),
        other => DnsFailure::new(DnsStatus::Error, other.to_string()),
    }
}
