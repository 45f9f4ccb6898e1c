//! Man pages and shell completions from a command's clap definition: the
//! Debian package ships them, `completions SHELL` prints them.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Command;
pub use clap_complete::Shell;

/// Print `command`'s completion script for `shell` to standard output
/// (made in memory first: a closed pipe is an error, not a panic).
pub fn print_completions(mut command: Command, shell: Shell) -> std::io::Result<()> {
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()
}

/// Write `NAME.1` and one `NAME-SUB.1` per visible subcommand into `dir`;
/// returns the files written.
pub fn write_man_pages(command: Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let command = command.disable_help_subcommand(true);
    let name = command.get_name().to_string();
    let mut written = vec![write_page(command.clone(), dir, &name)?];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = format!("{name}-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(page.clone())
            .version(command.get_version().unwrap_or_default().to_string());
        written.push(write_page(sub, dir, &page)?);
    }
    Ok(written)
}

fn write_page(command: Command, dir: &Path, page: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{page}.1"));
    let mut file = std::fs::File::create(&path)?;
    clap_mangen::Man::new(command).render(&mut file)?;
    file.flush()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;

    #[test]
    fn a_page_per_command_and_subcommand() {
        let cmd = Command::new("tool")
            .version("1.2.3")
            .about("does things")
            .subcommand(
                Command::new("run")
                    .about("runs")
                    .arg(Arg::new("fast").long("fast")),
            )
            .subcommand(Command::new("secret").hide(true));
        let dir = tempfile::tempdir().unwrap();
        let pages = write_man_pages(cmd, dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-run.1"]);
        let run = std::fs::read_to_string(&pages[1]).unwrap();
        assert!(
            run.contains(".TH tool-run 1") && run.contains("fast"),
            "{run}"
        );
    }
}
