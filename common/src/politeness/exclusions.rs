//! Exclusion lists (DESIGN §8): networks, domains and MX-name suffixes that a
//! scan must never touch. One list is given to the coordinator (`mxscope
//! serve --exclude`, every scan), one to a scan (`mxscope scan|submit
//! --exclude`); they travel with the scan options, so workers refuse
//! excluded addresses too.
//!
//! The file, one entry a line, `#` starts a comment:
//!
//! ```text
//! 192.0.2.0/24          # a network (IPv4 or IPv6 CIDR)
//! 2001:db8::/48
//! 198.51.100.7          # one address
//! example.org           # a domain and every name under it: never resolved
//! domain:example.net    # the same, spelled out
//! mx:mail.example.com   # MX names equal to or under it: never contacted
//! ```
//!
//! A bad line refuses the whole list with its line number and the reason.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::names::domain::{DomainName, InvalidLine};

/// Longest line accepted.
const MAX_LINE_BYTES: usize = 1024;
/// Most entries one list may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

/// A parsed exclusion list. Entries are kept normalised (networks with
/// their host bits cleared, names as lowercase A-labels), so two lists are
/// equal when they exclude the same things.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    nets: BTreeSet<IpNet>,
    domains: BTreeSet<String>,
    mx_suffixes: BTreeSet<String>,
}

/// Why a target or domain is excluded: the entry that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excluded {
    /// The address is in this network.
    Network(IpNet),
    /// The domain is (under) this excluded domain.
    Domain(String),
    /// The MX name is (under) this excluded suffix.
    MxSuffix(String),
}

impl fmt::Display for Excluded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(net) => write!(f, "excluded: address in {net}"),
            Self::Domain(domain) => write!(f, "excluded: domain {domain}"),
            Self::MxSuffix(suffix) => write!(f, "excluded: MX name under {suffix}"),
        }
    }
}

/// `name` equals `suffix` or ends with `.suffix`.
fn under(name: &str, suffix: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case(suffix)
        || (name.len() > suffix.len()
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
}

impl Exclusions {
    /// Parse a whole list; the first bad line refuses it.
    pub fn parse(text: &str) -> Result<Self, InvalidLine> {
        let mut list = Self::default();
        for (index, line) in text.lines().enumerate() {
            let invalid = |reason: String| InvalidLine {
                line: index + 1,
                reason,
            };
            if line.len() > MAX_LINE_BYTES {
                return Err(invalid(format!("line longer than {MAX_LINE_BYTES} bytes")));
            }
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            if list.len() >= MAX_ENTRIES {
                return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
            }
            list.add(entry).map_err(invalid)?;
        }
        Ok(list)
    }

    /// Add one entry (the syntax of a line, without comment).
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        if entry.split_whitespace().nth(1).is_some() {
            return Err(format!("{entry:?}: one entry a line"));
        }
        if let Some(name) = entry.strip_prefix("mx:") {
            self.mx_suffixes.insert(name_of("mx", name)?);
            return Ok(());
        }
        if let Some(name) = entry.strip_prefix("domain:") {
            self.domains.insert(name_of("domain", name)?);
            return Ok(());
        }
        if let Ok(net) = entry.parse::<IpNet>() {
            self.nets.insert(net.trunc());
            return Ok(());
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            self.nets.insert(IpNet::from(ip));
            return Ok(());
        }
        let numeric = entry.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if entry.contains('/') || entry.contains(':') || numeric {
            return Err(format!(
                "{entry:?} is neither a network (CIDR like 192.0.2.0/24 or 2001:db8::/48), \
                 nor an address, nor domain:NAME or mx:NAME"
            ));
        }
        self.domains.insert(name_of("domain", entry)?);
        Ok(())
    }

    /// Every entry (for the union of two lists).
    pub fn extend(&mut self, other: &Self) {
        self.nets.extend(other.nets.iter().copied());
        self.domains.extend(other.domains.iter().cloned());
        self.mx_suffixes.extend(other.mx_suffixes.iter().cloned());
    }

    pub fn len(&self) -> usize {
        self.nets.len() + self.domains.len() + self.mx_suffixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `domain` (an A-label) must not be resolved.
    pub fn domain(&self, domain: &str) -> Option<Excluded> {
        self.domains
            .iter()
            .find(|d| under(domain, d))
            .map(|d| Excluded::Domain(d.clone()))
    }

    /// Whether `ip` must not be contacted.
    pub fn address(&self, ip: IpAddr) -> Option<Excluded> {
        self.nets
            .iter()
            .find(|net| net.contains(&ip))
            .map(|net| Excluded::Network(*net))
    }

    /// Whether an MX of this name must not be contacted.
    pub fn mx_name(&self, name: &str) -> Option<Excluded> {
        self.mx_suffixes
            .iter()
            .find(|s| under(name, s))
            .map(|s| Excluded::MxSuffix(s.clone()))
    }

    /// Whether the target `ip`, known under `mx_names`, must not be contacted.
    pub fn target(&self, ip: IpAddr, mx_names: &[String]) -> Option<Excluded> {
        self.address(ip)
            .or_else(|| mx_names.iter().find_map(|name| self.mx_name(name)))
    }

    /// The list as entry lines (what travels with scan options); parsing
    /// them gives the same list.
    pub fn to_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.nets.iter().map(IpNet::to_string).collect();
        lines.extend(self.domains.iter().map(|d| format!("domain:{d}")));
        lines.extend(self.mx_suffixes.iter().map(|s| format!("mx:{s}")));
        lines
    }

    /// The list from entry lines (see [`Self::to_lines`]).
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Self, InvalidLine> {
        let text: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
        Self::parse(&text.join("\n"))
    }
}

fn name_of(kind: &str, input: &str) -> Result<String, String> {
    DomainName::parse(input)
        .map(|name| name.as_str().to_string())
        .map_err(|reason| format!("{kind} {input:?}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_entry() {
        let list = Exclusions::parse(
            "# operators who asked us not to scan\n\
             192.0.2.0/24\n\
             2001:db8:1::/48   # a v6 network\n\
             198.51.100.7\n\
             \n\
             Example.ORG\n\
             domain:bücher.example\n\
             mx:mail.provider.example.\n",
        )
        .unwrap();
        assert_eq!(list.len(), 6);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(list.address(ip("192.0.2.200")).is_some());
        assert!(list.address(ip("192.0.3.1")).is_none());
        assert!(list.address(ip("2001:db8:1:ffff::1")).is_some());
        assert!(list.address(ip("2001:db8:2::1")).is_none());
        assert!(list.address(ip("198.51.100.7")).is_some());
        assert!(list.address(ip("198.51.100.8")).is_none());
        assert!(list.domain("example.org").is_some());
        assert!(list.domain("sub.example.org").is_some());
        assert!(list.domain("notexample.org").is_none());
        assert!(list.domain("xn--bcher-kva.example").is_some());
        assert!(list.mx_name("mx1.mail.provider.example").is_some());
        assert!(list.mx_name("MAIL.provider.example.").is_some());
        assert!(list.mx_name("othermail.provider.example").is_none());
        assert_eq!(
            list.target(
                ip("203.0.113.1"),
                &["a.example".into(), "mail.provider.example".into()]
            ),
            Some(Excluded::MxSuffix("mail.provider.example".into()))
        );
        assert_eq!(
            list.address(ip("192.0.2.9")).unwrap().to_string(),
            "excluded: address in 192.0.2.0/24"
        );
        // Host bits are cleared; the lines round-trip.
        let again = Exclusions::from_lines(&list.to_lines()).unwrap();
        assert_eq!(again, list);
        assert_eq!(
            Exclusions::parse("192.0.2.77/24").unwrap().to_lines(),
            ["192.0.2.0/24"]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_number_and_reason() {
        for (text, line, needle) in [
            ("192.0.2.0/24\n192.0.2.0/33\n", 2, "neither a network"),
            (
                "ok.example\n\n10.0.0.0/8 11.0.0.0/8\n",
                3,
                "one entry a line",
            ),
            ("mx:\n", 1, "mx"),
            ("domain:bad_name!.example\n", 1, "bad_name"),
            ("300.1.2.3\n", 1, "neither a network"),
            ("fe80::/129\n", 1, "neither a network"),
        ] {
            let error = Exclusions::parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}");
            assert!(error.reason.contains(needle), "{text:?}: {}", error.reason);
        }
    }
}
