//! RFC 6125 DNS-ID matching of a leaf certificate against an MX name.

use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::GeneralName;

use super::parse;

/// Whether the leaf certificate is valid for `name` (DNS name, as A-labels).
///
/// RFC 6125 §6.4: the dNSName SANs are checked; only when there is none do the
/// subject CNs count. ASCII case-insensitive, a trailing dot is ignored, and a
/// wildcard matches only as the whole left-most label of a name with at least
/// two further labels (`*.example.com` covers `a.example.com`, not
/// `a.b.example.com` nor `example.com`; `f*.example.com` covers nothing).
/// An unparseable certificate or SAN extension matches nothing.
pub fn name_matches(leaf_der: &[u8], name: &str) -> bool {
    let Some(reference) = normalise_reference(name) else {
        return false;
    };
    let Ok(cert) = parse(leaf_der) else {
        return false;
    };
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.as_slice(),
        Ok(None) => &[],
        Err(_) => return false,
    };
    let mut has_dns_san = false;
    let mut matched = false;
    for general_name in sans {
        match general_name {
            GeneralName::DNSName(pattern) => {
                has_dns_san = true;
                matched |= dns_pattern_matches(pattern, &reference);
            }
            // A dNSName ([2]) that is not text still counts as a DNS-ID.
            GeneralName::Invalid(tag, _) if *tag == Tag(2) => has_dns_san = true,
            _ => {}
        }
    }
    if has_dns_san {
        return matched;
    }
    let cn_matches = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|pattern| dns_pattern_matches(pattern, &reference));
    cn_matches
}

/// The reference name, lowercase without trailing dot; `None` when it cannot
/// be a DNS name to match (empty, empty label, wildcard, non-ASCII).
fn normalise_reference(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.is_ascii()
        && !name.contains('*')
        && name.split('.').all(|label| !label.is_empty());
    valid.then(|| name.to_ascii_lowercase())
}

/// One certificate DNS-ID against a normalised reference name.
pub(super) fn dns_pattern_matches(pattern: &str, reference: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if pattern.is_empty() || !pattern.is_ascii() {
        return false;
    }
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            // The wildcard stands for exactly one non-empty label, and the
            // rest must itself be at least two labels (no `*.com`).
            let parent_ok = !parent.contains('*')
                && parent.contains('.')
                && parent.split('.').all(|label| !label.is_empty());
            parent_ok
                && reference
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent)
        }
        None => !pattern.contains('*') && pattern == reference,
    }
}
