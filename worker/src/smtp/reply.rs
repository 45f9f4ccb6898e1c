//! Whole SMTP replies (RFC 5321 §4.2) parsed from a bounded byte buffer.
//!
//! The parser is fed whatever the socket gave and hands out one complete
//! reply at a time (`NNN-` continuation lines up to the final `NNN `). It
//! never waits and never panics: too little data is `Ok(None)`, too much is a
//! [`ReplyError`]. Text is kept as bytes and decoded lossily only for display.

use mxscope_common::{Anomaly, Reply};

/// Caps on what a peer may send (DESIGN §4 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest reply line, CRLF included.
    pub max_line: usize,
    /// Most lines in one reply.
    pub max_lines: usize,
    /// Most bytes read from the peer in one session (before and after TLS).
    pub max_session_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 4096,
            max_lines: 256,
            max_session_bytes: 128 * 1024,
        }
    }
}

/// Why a peer's bytes are not an acceptable reply. Each ends the session
/// with outcome `protocol_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line passed [`Limits::max_line`] without a line end.
    #[error("reply line longer than {0} bytes")]
    LineTooLong(usize),
    /// A reply passed [`Limits::max_lines`] lines.
    #[error("reply longer than {0} lines")]
    TooManyLines(usize),
    /// The session passed [`Limits::max_session_bytes`].
    #[error("peer sent more than {0} bytes in one session")]
    SessionTooLarge(usize),
    /// A line does not start with a three-digit code.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
}

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReply {
    pub code: u16,
    /// Text of each line after the code and separator, without line end.
    pub lines: Vec<Vec<u8>>,
    /// Anomalies seen while parsing (bare LF, mixed codes, non-UTF-8).
    pub anomalies: Vec<Anomaly>,
}

impl ParsedReply {
    /// Positive completion (2xx).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply's text, lines joined by `\n`, decoded lossily.
    pub fn text(&self) -> String {
        let joined: Vec<String> = self
            .lines
            .iter()
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        joined.join("\n")
    }

    /// The record form of this reply.
    pub fn to_record(&self) -> Reply {
        Reply {
            code: self.code,
            text: self.text(),
        }
    }

    /// EHLO keywords: every line but the first, first word uppercased
    /// (`250-SIZE 1000` → `SIZE 1000` is kept whole, keyword part uppercased).
    pub fn ehlo_keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .map(|line| {
                let text = String::from_utf8_lossy(line);
                let text = text.trim();
                match text.split_once(' ') {
                    Some((keyword, params)) => {
                        format!("{} {}", keyword.to_ascii_uppercase(), params.trim())
                    }
                    None => text.to_ascii_uppercase(),
                }
            })
            .filter(|keyword| !keyword.is_empty())
            .collect()
    }

    /// Whether the EHLO reply advertises `keyword` (case-insensitive, exact word).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|line| {
            line.split(|b| *b == b' ')
                .next()
                .is_some_and(|word| trim_ascii(word).eq_ignore_ascii_case(keyword.as_bytes()))
        })
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Incremental reply parser with the session's byte budget.
#[derive(Debug)]
pub struct ReplyParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes fed in this session so far.
    total: usize,
}

impl ReplyParser {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            total: 0,
        }
    }

    /// Add bytes read from the peer; fails once the session budget is spent.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ReplyError> {
        self.total = self.total.saturating_add(data.len());
        if self.total > self.limits.max_session_bytes {
            return Err(ReplyError::SessionTooLarge(self.limits.max_session_bytes));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes that may still be read this session.
    pub fn budget_left(&self) -> usize {
        self.limits.max_session_bytes.saturating_sub(self.total)
    }

    /// Bytes received but not yet consumed by a reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drop and return the unconsumed bytes (e.g. injected before TLS).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Feed `data` and return the next complete reply, if any.
    pub fn parse(&mut self, data: &[u8]) -> Result<Option<ParsedReply>, ReplyError> {
        self.feed(data)?;
        self.next_reply()
    }

    /// The next complete reply in the buffer, `Ok(None)` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<ParsedReply>, ReplyError> {
        let mut pos = 0;
        let mut code: Option<u16> = None;
        let mut lines = Vec::new();
        let mut anomalies = Vec::new();
        loop {
            let rest = self.buf.get(pos..).unwrap_or_default();
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() >= self.limits.max_line {
                    return Err(ReplyError::LineTooLong(self.limits.max_line));
                }
                return Ok(None);
            };
            if nl + 1 > self.limits.max_line {
                return Err(ReplyError::LineTooLong(self.limits.max_line));
            }
            let raw = rest.get(..nl).unwrap_or_default();
            let line = match raw.strip_suffix(b"\r") {
                Some(line) => line,
                None => {
                    push_once(&mut anomalies, Anomaly::MalformedReply);
                    raw
                }
            };
            pos += nl + 1;
            let (line_code, last, text) = split_line(line)?;
            match code {
                None => code = Some(line_code),
                Some(first) if first != line_code => {
                    push_once(&mut anomalies, Anomaly::MalformedReply);
                }
                Some(_) => {}
            }
            if std::str::from_utf8(text).is_err() {
                push_once(&mut anomalies, Anomaly::NonUtf8Reply);
            }
            lines.push(text.to_vec());
            if lines.len() > self.limits.max_lines {
                return Err(ReplyError::TooManyLines(self.limits.max_lines));
            }
            if last {
                self.buf.drain(..pos);
                return Ok(Some(ParsedReply {
                    code: code.unwrap_or(line_code),
                    lines,
                    anomalies,
                }));
            }
        }
    }
}

fn push_once(anomalies: &mut Vec<Anomaly>, anomaly: Anomaly) {
    if !anomalies.contains(&anomaly) {
        anomalies.push(anomaly);
    }
}

/// Split `NNN[ -]text` into code, "is last line" and text.
fn split_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let malformed = || {
        let shown: String = String::from_utf8_lossy(line).chars().take(64).collect();
        ReplyError::Malformed(shown)
    };
    let digits = line.get(..3).ok_or_else(malformed)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, line.get(4..).unwrap_or_default())),
        Some(b'-') => Ok((code, false, line.get(4..).unwrap_or_default())),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parser() -> ReplyParser {
        ReplyParser::new(Limits::default())
    }

    #[test]
    fn single_and_multi_line() {
        let mut p = parser();
        let r = p.parse(b"220 mx.example ESMTP\r\n").unwrap().unwrap();
        assert_eq!((r.code, r.text()), (220, "mx.example ESMTP".to_string()));
        let r = p
            .parse(b"250-mx.example\r\n250-SIZE 1000\r\n250 starttls\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.ehlo_keywords(), ["SIZE 1000", "STARTTLS"]);
        assert!(r.has_keyword("STARTTLS"));
        assert!(r.anomalies.is_empty());
    }

    #[test]
    fn incomplete_until_final_line() {
        let mut p = parser();
        assert_eq!(p.parse(b"250-a\r\n250-b").unwrap(), None);
        assert_eq!(p.parse(b"\r\n250").unwrap(), None);
        let r = p.parse(b" c\r\n").unwrap().unwrap();
        assert_eq!(r.lines.len(), 3);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn leftover_bytes_stay_buffered() {
        let mut p = parser();
        let r = p
            .parse(b"220 go ahead\r\n250 injected\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(p.buffered(), 14);
        assert_eq!(p.take_buffered(), b"250 injected\r\n");
    }

    #[test]
    fn masked_starttls_is_not_starttls() {
        let mut p = parser();
        let r = p.parse(b"250-mx\r\n250 XXXXXXXA\r\n").unwrap().unwrap();
        assert!(!r.has_keyword("STARTTLS"));
    }

    #[test]
    fn anomalies_are_recorded() {
        let mut p = parser();
        let r = p.parse(b"250-a\n251 b\xff\r\n").unwrap().unwrap();
        assert_eq!(
            r.anomalies,
            [Anomaly::MalformedReply, Anomaly::NonUtf8Reply]
        );
        assert_eq!(r.code, 250);
    }

    #[test]
    fn caps_are_enforced() {
        let limits = Limits {
            max_line: 16,
            max_lines: 3,
            max_session_bytes: 64,
        };
        let mut p = ReplyParser::new(limits);
        assert_eq!(
            p.parse(b"250 aaaaaaaaaaaaaaaaaaaa"),
            Err(ReplyError::LineTooLong(16))
        );
        let mut p = ReplyParser::new(limits);
        assert_eq!(
            p.parse(b"250-a\r\n250-a\r\n250-a\r\n250-a\r\n"),
            Err(ReplyError::TooManyLines(3))
        );
        let mut p = ReplyParser::new(limits);
        assert_eq!(p.parse(&[b'x'; 65]), Err(ReplyError::SessionTooLarge(64)));
        let mut p = parser();
        assert!(matches!(
            p.parse(b"hello\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            p.parse(b"999 x\r\n"),
            Err(ReplyError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut p = ReplyParser::new(Limits { max_line: 32, max_lines: 4, max_session_bytes: 512 });
            for chunk in chunks {
                match p.parse(&chunk) {
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn well_formed_replies_roundtrip(code in 200u16..600, texts in proptest::collection::vec("[ -~]{0,20}", 1..8)) {
            let mut wire = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                let sep = if i + 1 == texts.len() { ' ' } else { '-' };
                wire.extend_from_slice(format!("{code}{sep}{text}\r\n").as_bytes());
            }
            let reply = parser().parse(&wire).unwrap().unwrap();
            prop_assert_eq!(reply.code, code);
            prop_assert_eq!(reply.lines.len(), texts.len());
        }
    }
}
