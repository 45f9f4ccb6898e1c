//! `--config FILE` (TOML whose keys are a command's long options): any file
//! is merged into the arguments or refused with a message, never a panic;
//! a merged result parses or fails in clap, never panics either.

#![no_main]

use std::ffi::OsString;
use std::sync::OnceLock;

use clap::{Arg, ArgAction, Command};
use libfuzzer_sys::fuzz_target;
use mxscope_common::cli_config::{merge_config_file, with_env};

fn command() -> Command {
    let work = Command::new("work")
        .arg(Arg::new("config").long("config"))
        .arg(Arg::new("vantage").long("vantage"))
        .arg(
            Arg::new("concurrency")
                .long("concurrency")
                .value_parser(clap::value_parser!(u32))
                .default_value("64"),
        )
        .arg(Arg::new("resolver").long("resolver").action(ArgAction::Append))
        .arg(Arg::new("legacy").long("legacy").action(ArgAction::SetTrue));
    with_env(Command::new("w").subcommand(work), &["work"])
}

fuzz_target!(|data: &[u8]| {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    static COMMAND: OnceLock<Command> = OnceLock::new();
    // On tmpfs when there is one: the file is written once per input.
    let path = PATH.get_or_init(|| {
        let dir = std::path::Path::new("/dev/shm");
        let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
        dir.join(format!("mxscope-fuzz-config-{}.toml", std::process::id()))
    });
    let command = COMMAND.get_or_init(command);
    if std::fs::write(path, data).is_err() {
        return;
    }
    let argv: Vec<OsString> = vec![
        "w".into(),
        "work".into(),
        "--config".into(),
        path.clone().into(),
    ];
    if let Ok(merged) = merge_config_file(command, argv, &["work"]) {
        let _ = command.clone().try_get_matches_from(merged);
    }
});
