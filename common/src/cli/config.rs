//! Settings of the long-running commands (`mxscope serve`,
//! `mxscope-worker work`) from three places, in rising precedence: a TOML
//! file (`--config FILE`), `MXSCOPE_*` environment variables, command-line
//! flags. One definition per setting: the clap argument. A file key is the
//! flag's long name without `--` (`data-dir = "/var/lib/mxscope"`), its
//! variable `MXSCOPE_` and the name in capitals (`MXSCOPE_DATA_DIR`).
//!
//! The file is turned into flags for the settings that neither the command
//! line nor the environment gave, and the command line is parsed again, so
//! every value goes through the same parser and checks. Secrets are never
//! settings: tokens come from files (`*-token-file`) or their own variables.

use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, Command};

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Options every long-running command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct OpsArgs {
    /// Serve Prometheus metrics (/metrics) and health checks (/healthz,
    /// /readyz) on this address, e.g. 0.0.0.0:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on standard error: text, or json (one object a line).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: crate::process::telemetry::LogFormat,
}

/// The `--config` option of `serve` and `work`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Read settings from this TOML file (keys are the long options without
    /// `--`); command-line flags and MXSCOPE_* variables override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file cannot be read; check the path and its permissions.
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file {0} is larger than 1 MiB")]
    TooLarge(PathBuf),
    /// The file is not valid TOML (the message gives line and column).
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A key is not a setting of the command, or its value has the wrong type.
    #[error("config file {path}: {message}")]
    Setting { path: PathBuf, message: String },
}

/// Parse this process's command line into `P`, completed by `--config` and
/// the `MXSCOPE_*` variables for `subcommands`. Exits with clap's message
/// on a bad command line (as `P::parse` does).
pub fn parse<P: clap::Parser>(subcommands: &[&str]) -> Result<P, ConfigFileError> {
    let command = with_env(P::command(), subcommands);
    let argv = merge_config_file(&command, std::env::args_os().collect(), subcommands)?;
    let matches = command.get_matches_from(argv);
    Ok(P::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

/// Give every option of `subcommands` its `MXSCOPE_*` variable.
pub fn with_env(command: Command, subcommands: &[&str]) -> Command {
    subcommands.iter().fold(command, |command, name| {
        command.mut_subcommand(*name, |sub| {
            sub.mut_args(|arg| match arg.get_long() {
                Some(long) if long != "help" && long != "version" => {
                    let var = env_name(long);
                    arg.env(var)
                }
                _ => arg,
            })
        })
    })
}

/// `MXSCOPE_` and the long name in capitals, dashes as underscores.
pub fn env_name(long: &str) -> String {
    format!("MXSCOPE_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// `argv` with the settings of the `--config` file of one of `subcommands`
/// added as flags, for those not given on the command line or in the
/// environment. Unchanged without a config file.
pub fn merge_config_file(
    command: &Command,
    mut argv: Vec<OsString>,
    subcommands: &[&str],
) -> Result<Vec<OsString>, ConfigFileError> {
    let Ok(matches) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
    else {
        return Ok(argv); // --help, --version: the real parse shows them
    };
    let Some((name, given)) = matches.subcommand() else {
        return Ok(argv);
    };
    if !subcommands.contains(&name) {
        return Ok(argv);
    }
    let Some(path) = given
        .get_raw("config")
        .and_then(|mut values| values.next())
        .map(PathBuf::from)
    else {
        return Ok(argv);
    };
    let Some(sub) = command.find_subcommand(name) else {
        return Ok(argv);
    };
    let table = read_table(&path)?;
    let flags = config_flags(command.get_name(), sub, given, &path, &table)?;
    // Right after the subcommand's name, before any `--`.
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == name)
        .map_or(argv.len(), |i| i + 2);
    argv.splice(at..at, flags);
    Ok(argv)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigFileError> {
    let read = |source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigFileError::TooLarge(path.to_path_buf()));
    }
    parse_table(path, &text)
}

/// The flags the settings of `table` (the `--config` file at `path` of
/// subcommand `sub` of `command_name`) add to a command line whose
/// matches are `given`: those the command line and the environment did
/// not set. A key that is not a long option of `sub`, or a value of the
/// wrong type, is refused with the reason.
pub fn config_flags(
    command_name: &str,
    sub: &Command,
    given: &clap::ArgMatches,
    path: &Path,
    table: &toml::Table,
) -> Result<Vec<OsString>, ConfigFileError> {
    let setting = |message: String| ConfigFileError::Setting {
        path: path.to_path_buf(),
        message,
    };
    let mut flags = Vec::new();
    for (key, value) in table {
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config" && key != "help")
            .ok_or_else(|| {
                setting(format!(
                    "`{key}` is not a setting of `{} {}` (settings are its long options \
                     without `--`, see --help)",
                    command_name,
                    sub.get_name()
                ))
            })?;
        if matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{key}");
        if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
            match value {
                toml::Value::Boolean(true) => flags.push(OsString::from(&flag)),
                toml::Value::Boolean(false) => {}
                _ => return Err(setting(format!("`{key}` must be true or false"))),
            }
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for item in values {
            let text = match item {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(setting(format!(
                        "`{key}` must be a string, a number or a list of them"
                    )))
                }
            };
            flags.push(OsString::from(format!("{flag}={text}")));
        }
    }
    Ok(flags)
}

/// A `--config` file's text as a TOML table (`path` names it in errors).
pub fn parse_table(path: &Path, text: &str) -> Result<toml::Table, ConfigFileError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigFileError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgMatches};

    fn command() -> Command {
        let work = Command::new("work")
            .arg(Arg::new("config").long("config"))
            .arg(Arg::new("vantage").long("vantage").required(true))
            .arg(
                Arg::new("concurrency")
                    .long("concurrency")
                    .default_value("64"),
            )
            .arg(
                Arg::new("resolver")
                    .long("resolver")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("legacy").long("legacy").action(ArgAction::SetTrue));
        with_env(Command::new("w").subcommand(work), &["work"])
    }

    fn parse(file: &str, args: &[&str]) -> Result<ArgMatches, ConfigFileError> {
        // A directory of its own, removed when dropped.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mxscope.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = ["w", "work", "--config"].map(OsString::from).to_vec();
        argv.push(path.clone().into());
        argv.extend(args.iter().map(OsString::from));
        let argv = merge_config_file(&command(), argv, &["work"])?;
        let matches = command().try_get_matches_from(argv).expect("parses");
        Ok(matches.subcommand_matches("work").unwrap().clone())
    }

    #[test]
    fn the_file_fills_what_the_command_line_does_not_give() {
        let file = "vantage = \"eu-1\"\nconcurrency = 8\nresolver = [\"127.0.0.1:53\", \"::1\"]\nlegacy = true\n";
        let m = parse(file, &[]).unwrap();
        assert_eq!(m.get_one::<String>("vantage").unwrap(), "eu-1");
        assert_eq!(m.get_one::<String>("concurrency").unwrap(), "8");
        let resolvers: Vec<&String> = m.get_many("resolver").unwrap().collect();
        assert_eq!(resolvers, ["127.0.0.1:53", "::1"]);
        assert!(m.get_flag("legacy"));
        let m = parse(file, &["--concurrency", "16"]).unwrap();
        assert_eq!(m.get_one::<String>("concurrency").unwrap(), "16");
        assert_eq!(m.get_one::<String>("vantage").unwrap(), "eu-1");
    }

    #[test]
    fn unknown_keys_and_bad_syntax_are_refused_with_the_reason() {
        let error = parse("vantge = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(
            error.contains("`vantge` is not a setting of `w work`"),
            "{error}"
        );
        let error = parse("vantage = \n", &[]).unwrap_err().to_string();
        assert!(error.contains("line 1"), "{error}");
        let error = parse("legacy = \"yes\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("`legacy` must be true or false"), "{error}");
        let error = parse("vantage = { a = 1 }\n", &[]).unwrap_err().to_string();
        assert!(error.contains("must be a string"), "{error}");
    }

    #[test]
    fn variables_are_named_after_the_long_option() {
        assert_eq!(env_name("metrics-listen"), "MXSCOPE_METRICS_LISTEN");
        let command = command();
        let work = command.find_subcommand("work").unwrap();
        let vantage = work
            .get_arguments()
            .find(|a| a.get_id() == "vantage")
            .unwrap();
        assert_eq!(vantage.get_env().unwrap(), "MXSCOPE_VANTAGE");
    }
}
