//! `--config FILE` (TOML whose keys are a command's long options): any file
//! is merged into the arguments or refused with a message, never a panic;
//! a merged result parses or fails in clap, never panics either.

#![no_main]

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use clap::{Arg, ArgAction, ArgMatches, Command};
use libfuzzer_sys::fuzz_target;
use mxscope_common::cli::config::{config_flags, parse_table, with_env};

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

/// The command and what a command line `work --config FILE` gave, once.
fn setup() -> &'static (Command, ArgMatches) {
    static SETUP: OnceLock<(Command, ArgMatches)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let command = command();
        let given = command
            .clone()
            .ignore_errors(true)
            .try_get_matches_from(["w", "work", "--config", "fuzz.toml"])
            .expect("the fixed command line");
        let given = given.subcommand_matches("work").expect("work").clone();
        (command, given)
    })
}

// What `merge_config_file` does after reading the file (the same two
// functions), without the file and the first two clap passes: the peer
// bytes are the file's.
fuzz_target!(|data: &[u8]| {
    let (command, given) = setup();
    let Some(sub) = command.find_subcommand("work") else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = parse_table(path, text) else {
        return;
    };
    let Ok(flags) = config_flags("w", sub, given, path, &table) else {
        return;
    };
    let mut argv: Vec<OsString> = vec!["w".into(), "work".into()];
    argv.extend(flags);
    let _ = command.clone().try_get_matches_from(argv);
});
