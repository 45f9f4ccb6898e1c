//! The name a probe announces in `EHLO`/`HELO`: an RFC 5321 `Domain` or an
//! address literal, and nothing else.
//!
//! It is parsed once where it enters (both CLIs, the scan options in the
//! store, both sides of the gRPC conversion); the SMTP dialogue formats only
//! an [`EhloName`], so no byte of an option can reach the wire as a second
//! command (no CR, LF, space or control character survives parsing).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// RFC 5321 §4.5.3.1.2: a domain name is at most 255 octets.
pub const MAX_EHLO_NAME: usize = 255;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;

/// A valid EHLO argument (RFC 5321 §4.1.1.1: `Domain / address-literal`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct EhloName(String);

/// Why a text is not an EHLO name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidEhloName {
    /// Nothing given: pass a host name that leads to you, such as `scanner.example.org`.
    #[error("the EHLO name is empty")]
    Empty,
    /// Longer than RFC 5321 allows: use a shorter name.
    #[error("the EHLO name is longer than {MAX_EHLO_NAME} bytes")]
    TooLong,
    /// CR, LF, space, another control character or a non-ASCII character:
    /// use the A-label (`xn--…`) of an IDN, and nothing after the name.
    #[error("the EHLO name contains {0}, which SMTP does not allow there")]
    ForbiddenCharacter(String),
    /// Not `label.label…` with letters, digits and inner hyphens.
    #[error("the EHLO name is not a domain (label {0:?}: letters, digits and inner hyphens, 1 to 63 of them)")]
    BadLabel(String),
    /// `[…]` that holds neither an IPv4 nor an `IPv6:` address.
    #[error("the EHLO address literal {0:?} is not [IPv4] or [IPv6:address]")]
    BadAddressLiteral(String),
}

impl EhloName {
    /// Parse `text` as an RFC 5321 `Domain` or address literal. A trailing
    /// dot is dropped (`mx.example.` → `mx.example`); nothing else changes.
    pub fn parse(text: &str) -> Result<Self, InvalidEhloName> {
        if let Some(bad) = text
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ')
        {
            return Err(InvalidEhloName::ForbiddenCharacter(describe(bad)));
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.is_empty() {
            return Err(InvalidEhloName::Empty);
        }
        if name.len() > MAX_EHLO_NAME {
            return Err(InvalidEhloName::TooLong);
        }
        if let Some(inner) = name.strip_prefix('[') {
            let literal = inner
                .strip_suffix(']')
                .ok_or_else(|| InvalidEhloName::BadAddressLiteral(name.to_string()))?;
            let valid = match literal.get(..5) {
                Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => literal
                    .get(5..)
                    .is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok()),
                _ => literal.parse::<Ipv4Addr>().is_ok(),
            };
            return if valid {
                Ok(Self(name.to_string()))
            } else {
                Err(InvalidEhloName::BadAddressLiteral(name.to_string()))
            };
        }
        for label in name.split('.') {
            let bytes = label.as_bytes();
            let ok = !bytes.is_empty()
                && bytes.len() <= MAX_LABEL
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
            if !ok {
                return Err(InvalidEhloName::BadLabel(label.to_string()));
            }
        }
        Ok(Self(name.to_string()))
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This machine's host name when it is a valid EHLO name, else `localhost`.
    pub fn from_hostname() -> Self {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|name| Self::parse(name.trim()).ok())
            .unwrap_or_else(|| Self("localhost".to_string()))
    }
}

fn describe(c: char) -> String {
    match c {
        '\r' => "a carriage return (CR)".to_string(),
        '\n' => "a line feed (LF)".to_string(),
        ' ' => "a space".to_string(),
        c if c.is_ascii_control() => format!("the control character {:?}", c),
        c => format!("the non-ASCII character {c:?}"),
    }
}

/// `localhost`: a placeholder for option structs built field by field;
/// every entry point sets a real name.
impl Default for EhloName {
    fn default() -> Self {
        Self("localhost".to_string())
    }
}

impl FromStr for EhloName {
    type Err = InvalidEhloName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for EhloName {
    type Error = InvalidEhloName;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<EhloName> for String {
    fn from(name: EhloName) -> Self {
        name.0
    }
}

impl fmt::Display for EhloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EhloName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_and_literals() {
        for good in [
            "scanner.example.org",
            "localhost",
            "a-b.c1",
            "xn--bcher-kva.example",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
        ] {
            assert_eq!(EhloName::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(
            EhloName::parse("mx.example.").unwrap().as_str(),
            "mx.example"
        );
    }

    #[test]
    fn refusals_say_why() {
        let cases = [
            ("", InvalidEhloName::Empty),
            (
                "scanner.example\r\nMAIL FROM:<x@example.org>",
                InvalidEhloName::ForbiddenCharacter("a carriage return (CR)".into()),
            ),
            ("a b", InvalidEhloName::ForbiddenCharacter("a space".into())),
            (
                "bücher.example",
                InvalidEhloName::ForbiddenCharacter("the non-ASCII character 'ü'".into()),
            ),
            ("-a.example", InvalidEhloName::BadLabel("-a".into())),
            ("a..example", InvalidEhloName::BadLabel(String::new())),
            ("a_b.example", InvalidEhloName::BadLabel("a_b".into())),
            (
                "[300.1.1.1]",
                InvalidEhloName::BadAddressLiteral("[300.1.1.1]".into()),
            ),
            (
                "[IPv6:zz]",
                InvalidEhloName::BadAddressLiteral("[IPv6:zz]".into()),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(EhloName::parse(text), Err(error), "{text:?}");
        }
        assert_eq!(
            EhloName::parse(&"a".repeat(256)),
            Err(InvalidEhloName::TooLong)
        );
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        let ok: EhloName = serde_json::from_str("\"mx.example\"").unwrap();
        assert_eq!(ok.as_str(), "mx.example");
        assert!(serde_json::from_str::<EhloName>("\"a\\r\\nQUIT\"").is_err());
    }

    proptest! {
        /// Whatever bytes an option holds, a parsed name is one SMTP token:
        /// no CR, LF, space or control character reaches the wire.
        #[test]
        fn a_parsed_name_is_one_token(text in "\\PC{0,40}|[a-z\\r\\n \\x00-\\x1f.:\\[\\]-]{0,40}") {
            if let Ok(name) = EhloName::parse(&text) {
                prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(!name.as_str().is_empty());
            }
        }
    }
}
