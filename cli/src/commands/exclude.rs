//! `--exclude FILE` of `mxscope serve` and `mxscope scan`: the coordinator's
//! exclusion list, read at start and again at every SIGHUP. A reload that
//! fails (unreadable file, bad line) keeps the list in force and says why.

use std::path::PathBuf;
use std::sync::Arc;

use mxscope_common::cli::args::on_hangup;
use mxscope_coordinator::service::Coordinator;
use tracing::{info, warn};

use super::read_exclusions;

/// Install the list of `path` on `coordinator`; reload it on every SIGHUP.
pub(crate) fn install(coordinator: &Arc<Coordinator>, path: PathBuf) -> anyhow::Result<()> {
    let list = read_exclusions(&path)?;
    let entries = coordinator.exclusions().replace(list);
    info!(file = %path.display(), entries, "exclusion list loaded (SIGHUP reloads it)");
    let coordinator = coordinator.clone();
    on_hangup(move || match read_exclusions(&path) {
        Ok(list) => {
            let entries = coordinator.exclusions().replace(list);
            info!(file = %path.display(), entries, "exclusion list reloaded");
            eprintln!(
                "exclusion list {} reloaded: {entries} entries",
                path.display()
            );
        }
        Err(error) => {
            warn!(%error, "exclusion list not reloaded; the previous one stays in force");
            eprintln!("exclusion list not reloaded (the previous one stays): {error:#}");
        }
    })?;
    Ok(())
}
