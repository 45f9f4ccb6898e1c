//! Logging set-up shared by the command lines.

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
pub fn init(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MXSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(default_level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
