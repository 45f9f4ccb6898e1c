//! A record together with its JSON, parsed once: what a worker delivers, what
//! the coordinator checks, and — byte for byte — what it stores. A record is
//! decoded once on its way in and never encoded a second time.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{DomainRecord, Record, TargetRecord};

/// A record and the JSON text it was read from (or written to).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered<T> {
    pub record: T,
    pub json: String,
}

impl<T: Serialize> Delivered<T> {
    /// A record made here, with its JSON.
    pub fn encode(record: T) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_string(&record)?;
        Ok(Self { record, json })
    }
}

impl Delivered<Record> {
    /// Parse one record, dispatching on its `kind`, keeping its text.
    pub fn parse(json: String) -> Result<Self, String> {
        let record = Record::from_json(&json)?;
        Ok(Self { record, json })
    }

    /// The record as its kind, with the same text.
    pub fn split(self) -> Kind {
        match self.record {
            Record::Domain(record) => Kind::Domain(Delivered {
                record,
                json: self.json,
            }),
            Record::Target(record) => Kind::Target(Delivered {
                record,
                json: self.json,
            }),
        }
    }
}

/// A delivered record as its kind.
#[derive(Debug, Clone, PartialEq)]
// As [`Record`]: most records in flight are targets.
#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Domain(Delivered<DomainRecord>),
    Target(Delivered<TargetRecord>),
}

/// Parse a record of the kind whose tag `json` starts with, in one pass.
/// Records as serde writes them start with their tag (`kind` is the first
/// field); `None` when `json` does not, and the caller reads the tag first.
pub(super) fn parse_tagged(json: &str) -> Option<Result<Record, String>> {
    fn parse<T: DeserializeOwned>(
        json: &str,
        what: &str,
        wrap: fn(T) -> Record,
    ) -> Result<Record, String> {
        serde_json::from_str(json)
            .map(wrap)
            .map_err(|e| format!("invalid {what} record: {e}"))
    }
    // A second "kind" later in the text is refused as a duplicate field.
    if json.starts_with(r#"{"kind":"domain","#) {
        Some(parse(json, "domain", Record::Domain))
    } else if json.starts_with(r#"{"kind":"target","#) {
        Some(parse(json, "target", Record::Target))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DnsResult, DnsStatus};

    #[test]
    fn a_delivered_record_keeps_its_text_and_kind() {
        let domain = DomainRecord::new("a.example".into(), DnsResult::failed(DnsStatus::Ok, "x"));
        let made = Delivered::encode(domain.clone()).expect("encodes");
        let parsed = Delivered::parse(made.json.clone()).expect("parses");
        assert_eq!(parsed.json, made.json);
        let Kind::Domain(got) = parsed.split() else {
            panic!("a domain record");
        };
        assert_eq!(got.record, domain);
    }

    #[test]
    fn one_pass_and_two_passes_read_the_same() {
        let target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, vec!["mx".into()]);
        let json = Record::Target(target.clone()).to_json();
        assert!(json.starts_with(r#"{"kind":"target","#), "{json}");
        assert_eq!(
            parse_tagged(&json),
            Some(Ok(Record::Target(target.clone())))
        );
        // Another field order or spacing takes the two-pass path, same record.
        let spaced = json.replacen(r#"{"kind":"target","#, r#"{ "kind" : "target" ,"#, 1);
        assert_eq!(parse_tagged(&spaced), None);
        assert_eq!(Record::from_json(&spaced), Ok(Record::Target(target)));
        // A tag given twice is refused, not read as the second one.
        let twice = json.replacen(
            r#"{"kind":"target","#,
            r#"{"kind":"target","kind":"domain","#,
            1,
        );
        let refused = Record::from_json(&twice).expect_err("duplicate tag");
        assert!(refused.contains("duplicate field"), "{refused}");
        // A tag naming the wrong kind for the fields is refused.
        let wrong = json.replacen("\"target\"", "\"domain\"", 1);
        assert!(Record::from_json(&wrong).is_err());
    }
}
