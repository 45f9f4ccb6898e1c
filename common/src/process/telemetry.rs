//! Logging set-up shared by the command lines.

use std::time::{Duration, Instant};

/// How often a repeating failure is logged as a warning.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// Whether a repeating failure last warned at `*last` warns again now
/// (and note it): the first time, then at most once per [`WARN_EVERY`].
pub fn warn_again(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    let again = last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
    if again {
        *last = Some(now);
    }
    again
}

/// The `tracing` filter used when `MXSCOPE_LOG` is not set: `level` for
/// mxscope, errors only for hickory (a failed DNSSEC validation is a verdict
/// in the records, not something to warn about once per query).
pub fn default_log_filter(level: &str) -> String {
    format!("{level},hickory_net=error,hickory_proto=error,hickory_resolver=error")
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Install the global subscriber: `MXSCOPE_LOG` or `default_level`, in `format`.
/// Colour only in text, only when standard error is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>): a file or
/// journald gets plain lines.
pub fn init(default_level: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MXSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(default_level)));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = colour(format, std::io::stderr().is_terminal(), no_color);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Whether log lines carry ANSI colour.
fn colour(format: LogFormat, terminal: bool, no_color: bool) -> bool {
    format == LogFormat::Text && terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_in_text_on_a_terminal_without_no_color() {
        assert!(colour(LogFormat::Text, true, false));
        assert!(!colour(LogFormat::Text, false, false), "a file or a pipe");
        assert!(!colour(LogFormat::Text, true, true), "NO_COLOR");
        assert!(!colour(LogFormat::Json, true, false), "JSON never");
    }
}
