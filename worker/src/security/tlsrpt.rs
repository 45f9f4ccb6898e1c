//! SMTP TLS Reporting (RFC 8460 §3): the `_smtp._tls.<domain>` TXT record
//! (`v=TLSRPTv1; rua=mailto:…,https://…`).
//!
//! Strict like the RFC: the version tag is case-sensitive and first, `rua`
//! is required, once, with one or more `mailto:` or `https:` URIs separated
//! by commas; unknown extension fields are ignored. Records that do not
//! start with `v=TLSRPTv1` are discarded; anything but exactly one remaining
//! record means the domain does not use TLS-RPT (verdict `invalid` when
//! there were some).

use mxscope_common::record::security_policy::{TlsRpt, TlsRptVerdict};

use crate::security::mtasts::{tag_fields, valid_ext_name, DnsFailure, PolicyDns};

/// Longest report URI kept.
const MAX_URI_LEN: usize = 2048;
/// At most this many report URIs.
const MAX_URIS: usize = 16;

/// Why a `v=TLSRPTv1` record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptError {
    /// Not a TLS-RPT record (no leading `v=TLSRPTv1`).
    #[error("does not start with v=TLSRPTv1")]
    NotTlsRpt,
    /// A field is not `name=value`.
    #[error("malformed field {0:?}")]
    Field(String),
    /// No `rua=` field.
    #[error("no rua field")]
    MissingRua,
    /// `rua=` given twice.
    #[error("rua given twice")]
    DuplicateRua,
    /// A report URI is empty, too long, or not `mailto:` / `https:`.
    #[error("invalid report URI {0:?} (mailto: or https: only)")]
    Uri(String),
    /// More report URIs than we keep.
    #[error("more than {MAX_URIS} report URIs")]
    TooManyUris,
}

/// Whether `txt` is a TLS-RPT record at all.
pub fn is_tlsrpt_txt(txt: &str) -> bool {
    txt.strip_prefix("v=TLSRPTv1")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

/// Parse one `_smtp._tls` TXT record: its report URIs.
pub fn parse_tlsrpt(txt: &str) -> Result<Vec<String>, TlsRptError> {
    if !is_tlsrpt_txt(txt) {
        return Err(TlsRptError::NotTlsRpt);
    }
    let mut fields = tag_fields(txt);
    fields.next();
    let mut rua: Option<Vec<String>> = None;
    for field in fields {
        let (name, value) = field
            .split_once('=')
            .filter(|(name, value)| valid_ext_name(name) && !value.is_empty())
            .ok_or_else(|| TlsRptError::Field(field.chars().take(80).collect()))?;
        if name != "rua" {
            continue;
        }
        if rua.is_some() {
            return Err(TlsRptError::DuplicateRua);
        }
        let uris = value
            .split(',')
            .map(|uri| uri.trim_matches([' ', '\t']))
            .map(parse_uri)
            .collect::<Result<Vec<_>, _>>()?;
        if uris.len() > MAX_URIS {
            return Err(TlsRptError::TooManyUris);
        }
        rua = Some(uris);
    }
    rua.ok_or(TlsRptError::MissingRua)
}

/// A `mailto:` or `https:` URI (scheme case-insensitive), visible ASCII only.
fn parse_uri(uri: &str) -> Result<String, TlsRptError> {
    let bad = || TlsRptError::Uri(uri.chars().take(80).collect());
    if uri.len() > MAX_URI_LEN || !uri.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad());
    }
    let (scheme, rest) = uri.split_once(':').ok_or_else(bad)?;
    let ok = match scheme.to_ascii_lowercase().as_str() {
        // An address: something@something.
        "mailto" => rest
            .split_once('@')
            .is_some_and(|(local, host)| !local.is_empty() && !host.is_empty()),
        // An authority after `//`.
        "https" => rest
            .strip_prefix("//")
            .and_then(|r| r.split(['/', '?', '#']).next())
            .is_some_and(|authority| !authority.is_empty()),
        _ => false,
    };
    if ok {
        Ok(uri.to_string())
    } else {
        Err(bad())
    }
}

/// Turn the TXT lookup of `_smtp._tls.<domain>` into a [`TlsRpt`].
pub fn evaluate(records: Result<&[String], &DnsFailure>) -> TlsRpt {
    let records = match records {
        Ok(records) => records,
        Err(e) => {
            return TlsRpt {
                verdict: TlsRptVerdict::DnsError,
                present: false,
                rua: Vec::new(),
                detail: Some(e.to_string()),
            }
        }
    };
    let candidates: Vec<&String> = records.iter().filter(|r| is_tlsrpt_txt(r)).collect();
    let invalid = |detail: String| TlsRpt {
        verdict: TlsRptVerdict::Invalid,
        present: true,
        rua: Vec::new(),
        detail: Some(detail),
    };
    match candidates.as_slice() {
        [] => TlsRpt {
            verdict: TlsRptVerdict::Absent,
            present: false,
            rua: Vec::new(),
            detail: None,
        },
        [one] => match parse_tlsrpt(one) {
            Ok(rua) => TlsRpt {
                verdict: TlsRptVerdict::Valid,
                present: true,
                rua,
                detail: None,
            },
            Err(e) => invalid(format!("invalid _smtp._tls record {one:?}: {e}")),
        },
        many => invalid(format!(
            "{} v=TLSRPTv1 records (exactly one allowed)",
            many.len()
        )),
    }
}

/// Look up and evaluate `_smtp._tls.<domain>` (one TXT query).
pub async fn lookup(dns: &PolicyDns, domain: &str) -> TlsRpt {
    let domain = domain.trim().trim_end_matches('.');
    let result = dns.txt(&format!("_smtp._tls.{domain}")).await;
    evaluate(result.as_deref())
}

#[cfg(test)]
mod tests {
    use mxscope_common::DnsStatus;
    use proptest::prelude::*;

    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_valid_record_gives_its_uris() {
        let rua = parse_tlsrpt("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.net/v1")
            .expect("valid");
        assert_eq!(
            rua,
            strings(&["mailto:tls@example.com", "https://r.example.net/v1"])
        );
        let rua = parse_tlsrpt("v=TLSRPTv1;rua=mailto:a@b.example ,  MAILTO:c@d.example;")
            .expect("valid");
        assert_eq!(rua, strings(&["mailto:a@b.example", "MAILTO:c@d.example"]));
        // Extensions are ignored.
        assert!(parse_tlsrpt("v=TLSRPTv1; ext=1; rua=mailto:a@b.example").is_ok());
    }

    #[test]
    fn malformed_records_say_why() {
        assert_eq!(parse_tlsrpt("v=TLSRPTv1"), Err(TlsRptError::MissingRua));
        assert_eq!(parse_tlsrpt("v=TLSRPTv1;"), Err(TlsRptError::MissingRua));
        assert_eq!(
            parse_tlsrpt("v=tlsrptv1; rua=mailto:a@b"),
            Err(TlsRptError::NotTlsRpt)
        );
        assert!(matches!(
            parse_tlsrpt("v=TLSRPTv1; rua=http://r.example/"),
            Err(TlsRptError::Uri(_))
        ));
        assert!(matches!(
            parse_tlsrpt("v=TLSRPTv1; rua=mailto:nobody"),
            Err(TlsRptError::Uri(_))
        ));
        assert!(matches!(
            parse_tlsrpt("v=TLSRPTv1; rua="),
            Err(TlsRptError::Field(_))
        ));
        assert!(matches!(
            parse_tlsrpt("v=TLSRPTv1; rua=mailto:a@b; rua=mailto:c@d"),
            Err(TlsRptError::DuplicateRua)
        ));
        assert!(matches!(
            parse_tlsrpt("v=TLSRPTv1; garbage"),
            Err(TlsRptError::Field(_))
        ));
    }

    #[test]
    fn selection_follows_rfc_8460() {
        let ok = strings(&["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@b.example"]);
        let rpt = evaluate(Ok(&ok));
        assert_eq!(rpt.verdict, TlsRptVerdict::Valid);
        assert!(rpt.present);
        assert_eq!(rpt.rua, strings(&["mailto:a@b.example"]));

        let absent = evaluate(Ok(&strings(&["unrelated"])));
        assert_eq!(absent.verdict, TlsRptVerdict::Absent);
        assert!(!absent.present);

        let two = strings(&[
            "v=TLSRPTv1; rua=mailto:a@b.example",
            "v=TLSRPTv1; rua=mailto:c@d.example",
        ]);
        assert_eq!(evaluate(Ok(&two)).verdict, TlsRptVerdict::Invalid);

        let bad = evaluate(Ok(&strings(&["v=TLSRPTv1; rua=ftp://x"])));
        assert_eq!(bad.verdict, TlsRptVerdict::Invalid);
        assert!(bad.present);
        assert!(bad.detail.is_some_and(|d| d.contains("ftp://x")));

        let failure = DnsFailure {
            status: DnsStatus::Servfail,
            message: "SERVFAIL".into(),
        };
        assert_eq!(evaluate(Err(&failure)).verdict, TlsRptVerdict::DnsError);
    }

    proptest! {
        #[test]
        fn never_panics(txt in "\\PC{0,200}") {
            let _ = parse_tlsrpt(&txt);
            let _ = parse_tlsrpt(&format!("v=TLSRPTv1; {txt}"));
        }
    }
}
