//! proto ⇄ domain conversions. `TryFrom` is where bad input from the wire
//! is rejected; nothing else in `common` touches generated types.

use std::net::IpAddr;

use crate::proto;
use crate::record::Record;

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

/// Parse a batch of JSON records.
pub fn records_from_json(json: &[String]) -> Result<Vec<Record>, ConvertError> {
    json.iter()
        .enumerate()
        .map(|(index, text)| {
            Record::from_json(text).map_err(|reason| ConvertError::Record { index, reason })
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

/// A probe target from the wire: its IP and MX names.
pub fn target_from_proto(
    target: &proto::ProbeTarget,
) -> Result<(IpAddr, Vec<String>), ConvertError> {
    let ip = target
        .ip
        .parse()
        .map_err(|_| ConvertError::Ip(target.ip.clone()))?;
    Ok((ip, target.mx_names.clone()))
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
        let bad = records_from_json(&["{\"kind\":\"other\"}".to_string()]).unwrap_err();
        assert!(bad.to_string().contains("unknown record kind"));
        assert!(records_from_json(&["not json".to_string()]).is_err());
    }
}
