//! Domain names and domain lists (DESIGN §2).
//!
//! A line is trimmed, lowercased, stripped of one trailing dot and converted
//! to an A-label with the `idna` crate (UTS 46, transitional off). `#` starts a
//! comment, blank lines are skipped and duplicates merged.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, Read};

/// Longest line accepted from a domain list, in bytes.
pub const MAX_LINE_BYTES: usize = 1024;

/// A validated domain name in A-label form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName {
    ascii: String,
    unicode: Option<String>,
}

impl DomainName {
    /// Normalise and validate one domain name.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err("empty domain name".into());
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err("contains whitespace".into());
        }
        let ascii = idna::domain_to_ascii_strict(trimmed)
            .map_err(|_| format!("not a valid domain name (IDNA): {trimmed:?}"))?;
        if ascii.len() > 253 {
            return Err(format!("longer than 253 characters ({})", ascii.len()));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err("needs at least two labels (e.g. example.org)".into());
        }
        for label in &labels {
            if label.is_empty() {
                return Err("has an empty label".into());
            }
            if label.len() > 63 {
                return Err(format!("label longer than 63 characters: {label}"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("label has invalid characters: {label}"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("label starts or ends with '-': {label}"));
            }
        }
        let (unicode, _) = idna::domain_to_unicode(&ascii);
        let unicode = (unicode != ascii).then_some(unicode);
        Ok(Self { ascii, unicode })
    }

    /// The A-label form, used on the wire and as the record key.
    pub fn as_str(&self) -> &str {
        &self.ascii
    }

    /// The U-label form, when the name is an IDN.
    pub fn unicode(&self) -> Option<&str> {
        self.unicode.as_deref()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ascii)
    }
}

/// A line of a domain list that was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// A parsed domain list.
#[derive(Debug, Default)]
pub struct DomainList {
    /// Unique domains, in first-seen order.
    pub domains: Vec<DomainName>,
    /// Rejected lines (empty unless parsing was lenient).
    pub invalid: Vec<InvalidLine>,
    /// Lines merged into an earlier identical domain.
    pub duplicates: usize,
}

/// Errors reading a domain list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// A line is invalid; fix it or pass `--skip-invalid`.
    #[error("{0}")]
    Invalid(InvalidLine),
    /// The input could not be read.
    #[error("reading the domain list: {0}")]
    Io(#[from] std::io::Error),
}

/// One line of a domain list (without its line end): `None` for a blank or
/// comment-only line, else the domain or why the line is invalid. The one
/// line rule of every list reader (files, `DomainListBuilder`, the
/// coordinator's streamed submissions).
pub fn parse_list_line(line: &str) -> Option<Result<DomainName, String>> {
    if line.len() > MAX_LINE_BYTES {
        return Some(Err(format!("line longer than {MAX_LINE_BYTES} bytes")));
    }
    let text = line.split('#').next().unwrap_or("").trim();
    (!text.is_empty()).then(|| DomainName::parse(text))
}

/// Builds a [`DomainList`] line by line (for lists that arrive in chunks,
/// e.g. over gRPC). Line numbers count from 1 across all pushed lines.
#[derive(Debug)]
pub struct DomainListBuilder {
    list: DomainList,
    seen: HashSet<String>,
    line_no: usize,
    lenient: bool,
}

impl DomainListBuilder {
    /// `lenient`: collect invalid lines instead of failing on the first.
    pub fn new(lenient: bool) -> Self {
        Self {
            list: DomainList::default(),
            seen: HashSet::new(),
            line_no: 0,
            lenient,
        }
    }

    /// Add one line (without its line end).
    pub fn push_line(&mut self, line: &str) -> Result<(), InvalidLine> {
        self.line_no += 1;
        let parsed = parse_list_line(line);
        self.push_parsed(parsed)
    }

    fn push_checked(&mut self, line: Result<&str, String>) -> Result<(), InvalidLine> {
        self.line_no += 1;
        let parsed = match line {
            Err(reason) => Some(Err(reason)),
            Ok(text) => parse_list_line(text),
        };
        self.push_parsed(parsed)
    }

    fn push_parsed(
        &mut self,
        parsed: Option<Result<DomainName, String>>,
    ) -> Result<(), InvalidLine> {
        match parsed {
            None => Ok(()),
            Some(Ok(name)) => {
                if self.seen.insert(name.as_str().to_string()) {
                    self.list.domains.push(name);
                } else {
                    self.list.duplicates += 1;
                }
                Ok(())
            }
            Some(Err(reason)) => {
                let invalid = InvalidLine {
                    line: self.line_no,
                    reason,
                };
                if self.lenient {
                    self.list.invalid.push(invalid);
                    Ok(())
                } else {
                    Err(invalid)
                }
            }
        }
    }

    /// The list so far.
    pub fn finish(self) -> DomainList {
        self.list
    }
}

/// Parse a domain list. When `lenient` is false the first invalid line is an
/// error; when true invalid lines are collected in [`DomainList::invalid`].
pub fn parse_domain_list(mut reader: impl BufRead, lenient: bool) -> Result<DomainList, ListError> {
    let mut builder = DomainListBuilder::new(lenient);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Bound each line: read at most MAX_LINE_BYTES + 1 before the newline.
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let overlong = buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES;
        if overlong {
            // Drain the rest of the line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut reader).take(64 * 1024).read_until(b'\n', &mut sink)?;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        let line = if overlong {
            Err(format!("line longer than {MAX_LINE_BYTES} bytes"))
        } else {
            std::str::from_utf8(&buf).map_err(|_| "not valid UTF-8".to_string())
        };
        builder.push_checked(line).map_err(ListError::Invalid)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_dot_and_idn() {
        let d = DomainName::parse("  Example.IT. ").unwrap();
        assert_eq!(d.as_str(), "example.it");
        let d = DomainName::parse("bücher.lab.test").unwrap();
        assert_eq!(d.as_str(), "xn--bcher-kva.lab.test");
        assert_eq!(d.unicode(), Some("bücher.lab.test"));
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "nodot", "a..b", "-a.b", "a b.c", "exa$mple.com"] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn list_skips_comments_blanks_and_merges_duplicates() {
        let input = "# header\n\na.example\nA.EXAMPLE.\nb.example # trailing\n";
        let list = parse_domain_list(input.as_bytes(), false).unwrap();
        let names: Vec<_> = list.domains.iter().map(|d| d.as_str()).collect();
        assert_eq!(names, ["a.example", "b.example"]);
        assert_eq!(list.duplicates, 1);
    }

    #[test]
    fn invalid_line_is_named() {
        let input = "a.example\nnot a domain\n";
        let err = parse_domain_list(input.as_bytes(), false).unwrap_err();
        assert_eq!(err.to_string(), "line 2: contains whitespace");
        let list = parse_domain_list(input.as_bytes(), true).unwrap();
        assert_eq!(list.domains.len(), 1);
        assert_eq!(list.invalid[0].line, 2);
    }

    #[test]
    fn builder_counts_lines_across_pushes() {
        let mut b = DomainListBuilder::new(false);
        b.push_line("a.example").unwrap();
        b.push_line("# comment").unwrap();
        let err = b.push_line("bad name").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn overlong_and_binary_lines_are_rejected() {
        let mut input = vec![b'a'; 5000];
        input.extend_from_slice(b"\n\xff\xfe\nok.example\n");
        let list = parse_domain_list(&input[..], true).unwrap();
        assert_eq!(list.invalid.len(), 2);
        assert_eq!(list.invalid[0].line, 1);
        assert_eq!(list.invalid[1].line, 2);
        assert_eq!(list.domains.len(), 1);
    }
}
