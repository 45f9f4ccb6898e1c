//! Logging defaults shared by the command lines.

/// The `tracing` filter used when `MXSCOPE_LOG` is not set: `level` for
/// mxscope, errors only for hickory (a failed DNSSEC validation is a verdict
/// in the records, not something to warn about once per query).
pub fn default_log_filter(level: &str) -> String {
    format!("{level},hickory_net=error,hickory_proto=error,hickory_resolver=error")
}
