//! Records and counting enums (DESIGN §4, §5).
//!
//! Field names are a contract that users' scripts rely on: add fields freely,
//! rename none without bumping [`SCHEMA_VERSION`].
//!
//! Layout (every type is re-exported here and at the crate root):
//! - this file: [`SCHEMA_VERSION`], [`Record`], either kind as JSON, and
//!   [`snake`], an enum value's record name for tables and messages.
//! - `delivered`: [`Delivered`], a record with its JSON text, parsed once
//!   (what the coordinator checks and stores as received).
//! - `domain`: [`DomainRecord`], its DNS result, exchanges, anomalies and
//!   [`DomainSecurity`].
//! - `target`: [`TargetRecord`], its timings, replies and [`Anomaly`]s, its
//!   [`SkipReason`] and [`Retries`] (also `politeness::`).
//! - `outcome`: [`Outcome`], [`Bucket`], [`Phase`], the enums reports count.
//! - `tls`: [`TlsFacts`], [`CertInfo`], [`KeyInfo`], [`Verification`] (from
//!   `tls_facts`),
//!   [`VersionSupport`] and [`Protocols`].

mod delivered;
mod depth;
mod domain;
pub mod findings;
mod outcome;
pub mod security_dns;
pub mod security_policy;
mod target;
mod tls;
pub mod tls_facts;

use serde::{Deserialize, Serialize};

pub use delivered::{Delivered, Kind as DeliveredKind};
pub use depth::{DepthLevel, SuiteClass, Tested, TlsDepth, VersionDepth};
pub use domain::{
    targets_of, DnsAnomaly, DnsResult, DnsStatus, DomainRecord, DomainSecurity, MxEntry,
};
pub use outcome::{Bucket, Outcome, Phase};
pub use target::{Anomaly, Attempt, Reply, Retries, SkipReason, TargetRecord, Timings};
pub use tls::{CertInfo, KeyInfo, OcspStaple, Protocols, TlsFacts, Verification, VersionSupport};

/// Version of the JSON record layout.
/// 2 added `security` (domain) and `dane` / `ptr` (target); every field of 1 is kept.
pub const SCHEMA_VERSION: u32 = 2;

/// The JSON Schema (draft 2020-12) of a [`Record`] as stored and exported,
/// derived from the types; `docs/record.schema.json` is this, pretty-printed
/// (a unit test keeps them equal).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Record)).unwrap_or_default()
}

/// Any record: what workers deliver and what exports contain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
// Most records in flight are targets (the large variant): boxing them would
// add an allocation per record to save space on the rarer domain records.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Domain(DomainRecord),
    Target(TargetRecord),
}

impl Record {
    /// Parse one JSON record, dispatching on its `kind` (in one pass when
    /// the tag comes first, as this crate writes records).
    pub fn from_json(json: &str) -> Result<Self, String> {
        if let Some(parsed) = delivered::parse_tagged(json) {
            return parsed;
        }
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(borrow)]
            kind: &'a str,
        }
        let kind: Kind<'_> =
            serde_json::from_str(json).map_err(|e| format!("not a record: {e}"))?;
        match kind.kind {
            "domain" => serde_json::from_str(json)
                .map(Self::Domain)
                .map_err(|e| format!("invalid domain record: {e}")),
            "target" => serde_json::from_str(json)
                .map(Self::Target)
                .map_err(|e| format!("invalid target record: {e}")),
            other => Err(format!("unknown record kind {other:?}")),
        }
    }

    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An enum value's snake_case record name, as the JSON records write it
/// (`starttls_ok`, `no_tlsa`), for reports, CSV cells and messages. A value
/// that does not serialize as a plain string (no record enum does) shows its
/// `Debug` form rather than nothing.
pub fn snake<T: Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::security_dns::DaneVerdict;
    use crate::record::security_dns::{DaneResult, DnssecReason, DnssecStatus};
    use crate::record::security_policy::{MtaSts, TlsRpt};
    use crate::record::security_policy::{MtaStsVerdict, TlsRptVerdict};

    /// `docs/record.schema.json` is the schema the types give; after a
    /// change of the record, rewrite it with
    /// `MXSCOPE_WRITE_SCHEMA=1 cargo test -p mxscope-common record_schema`.
    #[test]
    fn the_record_schema_in_the_docs_is_the_types_schema() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/record.schema.json");
        let ours = serde_json::to_string_pretty(&json_schema()).expect("a schema") + "\n";
        if std::env::var_os("MXSCOPE_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &ours).expect("writing docs/record.schema.json");
        }
        let docs = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            docs == ours,
            "docs/record.schema.json differs from the record's types: run MXSCOPE_WRITE_SCHEMA=1 cargo test -p mxscope-common record_schema"
        );
        // The two kinds, each with its identifying fields required.
        let text = ours.as_str();
        for field in ["\"domain\"", "\"ip\"", "\"outcome\"", "\"schema_version\""] {
            assert!(text.contains(field), "{field} in the schema");
        }
    }

    #[test]
    fn snake_is_the_record_name() {
        assert_eq!(snake(&Outcome::StarttlsOk), "starttls_ok");
        assert_eq!(snake(&DnssecStatus::Indeterminate), "indeterminate");
        assert_eq!(snake(&DaneVerdict::NoTlsa), "no_tlsa");
        assert_eq!(snake(&Anomaly::PreTlsInjection), "pre_tls_injection");
        // Not a string on the wire: the Debug form, never an empty cell.
        assert_eq!(snake(&Some(3_u8)), "Some(3)");
    }

    #[test]
    fn schema_1_records_still_parse() {
        let domain = r#"{"kind":"domain","schema_version":1,"domain":"example.org",
            "dns":{"status":"ok","null_mx":false,"implicit_mx":false,"mx":[]}}"#;
        let Ok(Record::Domain(domain)) = Record::from_json(domain) else {
            panic!("a schema 1 domain record parses");
        };
        assert_eq!(domain.security, None);
        let mut target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, vec![]);
        target.schema_version = 1;
        let json = Record::Target(target).to_json();
        assert!(!json.contains("dane") && !json.contains("ptr"), "{json}");
        let Ok(Record::Target(target)) = Record::from_json(&json) else {
            panic!("a target without security fields parses");
        };
        assert!(target.dane.is_empty() && target.ptr.is_none());
    }

    #[test]
    fn security_fields_round_trip() {
        let mut domain =
            DomainRecord::new("example.org".into(), DnsResult::failed(DnsStatus::Ok, "x"));
        assert_eq!(domain.schema_version, 2);
        domain.security = Some(DomainSecurity {
            dnssec_mx: DnssecStatus::Secure,
            dnssec_exchanges: [("mx.example.org".to_string(), DnssecStatus::Insecure)].into(),
            dnssec_mx_reason: None,
            dnssec_exchange_reasons: [(
                "mx.example.org".to_string(),
                DnssecReason::InsecureDelegation,
            )]
            .into(),
            resolver_check: None,
            mta_sts: MtaSts {
                verdict: MtaStsVerdict::NoMtaSts,
                txt_id: None,
                policy: None,
                per_mx: Vec::new(),
                detail: None,
            },
            tls_rpt: TlsRpt {
                verdict: TlsRptVerdict::Absent,
                present: false,
                rua: Vec::new(),
                detail: None,
            },
        });
        let json = Record::Domain(domain.clone()).to_json();
        assert!(json.contains(r#""dnssec_mx":"secure""#), "{json}");
        assert_eq!(Record::from_json(&json), Ok(Record::Domain(domain)));

        let mut target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, vec![]);
        target.dane.insert(
            "mx.example.org".into(),
            DaneResult {
                verdict: DaneVerdict::NoTlsa,
                tlsa: Vec::new(),
                detail: None,
                reason: None,
            },
        );
        let json = Record::Target(target.clone()).to_json();
        assert!(json.contains(r#""verdict":"no_tlsa""#), "{json}");
        assert_eq!(Record::from_json(&json), Ok(Record::Target(target)));
    }
}
