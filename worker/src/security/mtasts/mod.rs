//! MTA-STS (RFC 8461): the `_mta-sts.<domain>` TXT record, the HTTPS policy
//! at `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and whether each
//! MX of the domain would satisfy an enforcing sender.
//!
//! Layout:
//! - this file: the pure parts — TXT and policy parsers and [`evaluate`],
//!   which turns the facts into an [`MtaSts`]; MX pattern matching and the
//!   verdict over a fetched policy are [`mxscope_common::mtasts`]'s
//!   (re-exported here), so the coordinator's report shares them.
//! - [`lookup`]: TXT and address lookups through the worker's resolver
//!   (never the system resolver).
//! - [`fetch`]: the bounded HTTPS policy fetch ([`PolicyFetcher`]).
//!
//! Parsing is strict where RFC 8461 is (case-sensitive `v=STSv1`, `id`
//! of 1 to 32 letters and digits, `max_age` of 1 to 10 digits, the three
//! modes) and tolerant only of whitespace: trailing blanks, LF or CRLF line
//! ends and blank lines. Unknown extension fields are ignored, as the RFC
//! asks; a repeated `version`, `mode` or `max_age` is an error (which value a
//! sender would take is undefined).

pub mod fetch;
pub mod lookup;

use mxscope_common::mtasts::evaluate_policy;
use mxscope_common::record::security_policy::{MtaSts, MtaStsVerdict, Policy, PolicyMode};

pub use fetch::{FetchConfig, FetchError, PolicyFetcher};
pub use lookup::{DnsFailure, PolicyDns};
pub use mxscope_common::mtasts::{mx_matches, mx_tls_facts, reevaluate, MxSession, MxTls};

/// The policy file's path on `mta-sts.<domain>`.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Largest policy body accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Longest `id` of the TXT record (RFC 8461 §3.1).
pub const MAX_ID_LEN: usize = 32;

/// A valid `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsTxt {
    pub id: String,
}

/// Why a `v=STSv1` TXT record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtError {
    /// The record does not start with `v=STSv1`; it is not an MTA-STS record.
    #[error("does not start with v=STSv1")]
    NotSts,
    /// A field is not `name=value` with a valid name and value.
    #[error("malformed field {0:?}")]
    Field(String),
    /// No `id=` field.
    #[error("no id field")]
    MissingId,
    /// The `id` is empty, longer than 32 or not only letters and digits.
    #[error("invalid id {0:?} (1 to 32 letters and digits)")]
    BadId(String),
    /// `id=` given twice.
    #[error("id given twice")]
    DuplicateId,
}

/// Whether `txt` is an MTA-STS record at all (RFC 8461 §3.1: records that
/// do not begin with `v=STSv1` are discarded).
pub fn is_sts_txt(txt: &str) -> bool {
    txt.strip_prefix("v=STSv1")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

/// Parse one `_mta-sts` TXT record (its strings already concatenated).
pub fn parse_sts_txt(txt: &str) -> Result<StsTxt, TxtError> {
    if !is_sts_txt(txt) {
        return Err(TxtError::NotSts);
    }
    let mut fields = tag_fields(txt);
    // The first field is `v=STSv1` (checked above).
    fields.next();
    let mut id = None;
    for field in fields {
        let (name, value) = field
            .split_once('=')
            .filter(|(name, value)| valid_ext_name(name) && valid_ext_value(value))
            .ok_or_else(|| TxtError::Field(field.to_string()))?;
        if name == "id" {
            if id.is_some() {
                return Err(TxtError::DuplicateId);
            }
            let ok = (1..=MAX_ID_LEN).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(TxtError::BadId(value.to_string()));
            }
            id = Some(value.to_string());
        }
    }
    id.map(|id| StsTxt { id }).ok_or(TxtError::MissingId)
}

/// The `;`-separated fields of a tag-value record, trimmed, without the
/// empty field a trailing `;` leaves.
pub(crate) fn tag_fields(txt: &str) -> impl Iterator<Item = &str> {
    let txt = txt.trim_end_matches([' ', '\t']);
    let txt = txt.strip_suffix(';').unwrap_or(txt);
    txt.split(';').map(|f| f.trim_matches([' ', '\t']))
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
pub(crate) fn valid_ext_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII but `;` and `=`.
fn valid_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=')
}

/// What the `_mta-sts.<domain>` TXT lookup gave, after RFC 8461 §3.1's
/// selection (keep the `v=STSv1` records; exactly one must remain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtLookup {
    /// No record starting with `v=STSv1` (or NXDOMAIN/NODATA).
    Absent,
    /// Exactly one valid record.
    Found(StsTxt),
    /// Several `v=STSv1` records, or one that does not parse.
    Invalid(String),
    /// The lookup failed (SERVFAIL, timeout, ...).
    DnsError(String),
}

/// Apply RFC 8461 §3.1's selection to the TXT strings of `_mta-sts`.
pub fn select_sts_txt(records: &[String]) -> TxtLookup {
    let sts: Vec<&String> = records.iter().filter(|r| is_sts_txt(r)).collect();
    match sts.as_slice() {
        [] => TxtLookup::Absent,
        [one] => match parse_sts_txt(one) {
            Ok(txt) => TxtLookup::Found(txt),
            Err(e) => TxtLookup::Invalid(format!("invalid _mta-sts record {one:?}: {e}")),
        },
        many => TxtLookup::Invalid(format!(
            "{} v=STSv1 records (exactly one allowed)",
            many.len()
        )),
    }
}

/// Why a policy body is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The body is not UTF-8 text.
    #[error("policy is not UTF-8")]
    NotUtf8,
    /// A line is not `key: value` with a valid key and value.
    #[error("line {line}: malformed field {text:?}")]
    Line { line: usize, text: String },
    /// A required field is missing.
    #[error("no {0} field")]
    Missing(&'static str),
    /// A field that may appear once appears again.
    #[error("line {line}: {field} given twice")]
    Duplicate { line: usize, field: &'static str },
    /// `version` is not `STSv1`.
    #[error("unsupported version {0:?}")]
    Version(String),
    /// `mode` is not `enforce`, `testing` or `none`.
    #[error("invalid mode {0:?}")]
    Mode(String),
    /// `max_age` is not 1 to 10 digits.
    #[error("invalid max_age {0:?}")]
    MaxAge(String),
    /// An `mx` value is not a host name or `*.` wildcard.
    #[error("invalid mx pattern {0:?}")]
    Mx(String),
}

/// Parse a policy body (RFC 8461 §3.2).
pub fn parse_policy(body: &[u8]) -> Result<Policy, PolicyError> {
    let text = std::str::from_utf8(body).map_err(|_| PolicyError::NotUtf8)?;
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let malformed = || PolicyError::Line {
            line: line_no,
            text: line.chars().take(80).collect(),
        };
        let (key, value) = line.split_once(':').ok_or_else(malformed)?;
        let value = value.trim_start_matches([' ', '\t']);
        if !valid_ext_name(key) || value.is_empty() || value.chars().any(char::is_control) {
            return Err(malformed());
        }
        let once = |slot: &Option<String>, field: &'static str| match slot {
            Some(_) => Err(PolicyError::Duplicate {
                line: line_no,
                field,
            }),
            None => Ok(Some(value.to_string())),
        };
        match key {
            "version" => version = once(&version, "version")?,
            "mode" => mode = once(&mode, "mode")?,
            "max_age" => max_age = once(&max_age, "max_age")?,
            "mx" => mx.push(parse_mx_pattern(value)?),
            // Extension fields are ignored (RFC 8461 §3.2).
            _ => {}
        }
    }
    let version = version.ok_or(PolicyError::Missing("version"))?;
    if version != "STSv1" {
        return Err(PolicyError::Version(version));
    }
    let mode = match mode.ok_or(PolicyError::Missing("mode"))?.as_str() {
        "enforce" => PolicyMode::Enforce,
        "testing" => PolicyMode::Testing,
        "none" => PolicyMode::None,
        other => return Err(PolicyError::Mode(other.to_string())),
    };
    let max_age = max_age.ok_or(PolicyError::Missing("max_age"))?;
    let max_age = Some(&max_age)
        .filter(|v| (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(PolicyError::MaxAge(max_age))?;
    if mx.is_empty() && mode != PolicyMode::None {
        return Err(PolicyError::Missing("mx"));
    }
    Ok(Policy { mode, mx, max_age })
}

/// An `mx` value: `["*."] Domain`, returned lowercase without trailing dot.
fn parse_mx_pattern(value: &str) -> Result<String, PolicyError> {
    let lower = value.to_ascii_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    let host = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(PolicyError::Mx(value.chars().take(80).collect()));
    }
    Ok(lower.strip_suffix('.').unwrap_or(&lower).to_string())
}

/// Turn the facts into a verdict.
///
/// `policy` is the fetch result, `None` when no fetch was tried (it is only
/// needed when `txt` is [`TxtLookup::Found`]). `mx_names` are the domain's
/// MX hosts; `per_mx_tls` the TLS facts of their addresses (an MX may appear
/// once per address; every address must pass). An MX without any fact is
/// "not probed" and counts as a failure for an enforcing sender, as does a
/// domain without MX.
pub fn evaluate(
    txt: &TxtLookup,
    policy: Option<&Result<Policy, FetchError>>,
    mx_names: &[String],
    per_mx_tls: &[MxTls],
) -> MtaSts {
    let verdict_only = |verdict, txt_id: Option<String>, detail: Option<String>| MtaSts {
        verdict,
        txt_id,
        policy: None,
        per_mx: Vec::new(),
        detail,
    };
    let txt_id = match txt {
        TxtLookup::Absent => return verdict_only(MtaStsVerdict::NoMtaSts, None, None),
        TxtLookup::Invalid(why) => {
            return verdict_only(MtaStsVerdict::TxtInvalid, None, Some(why.clone()))
        }
        TxtLookup::DnsError(why) => {
            return verdict_only(MtaStsVerdict::DnsError, None, Some(why.clone()))
        }
        TxtLookup::Found(txt) => Some(txt.id.clone()),
    };
    let policy = match policy {
        None => {
            return verdict_only(
                MtaStsVerdict::PolicyFetchFailed,
                txt_id,
                Some("policy not fetched".into()),
            )
        }
        Some(Err(e)) if e.policy_host_absent() => {
            return verdict_only(MtaStsVerdict::TxtWithoutPolicy, txt_id, Some(e.to_string()))
        }
        Some(Err(e)) => {
            return verdict_only(
                MtaStsVerdict::PolicyFetchFailed,
                txt_id,
                Some(e.to_string()),
            )
        }
        Some(Ok(policy)) => policy.clone(),
    };
    evaluate_policy(txt_id, policy, mx_names, per_mx_tls)
}

#[cfg(test)]
mod tests;
