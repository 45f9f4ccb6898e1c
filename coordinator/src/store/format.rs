//! The data directory's format version: a file `FORMAT` beside sled's,
//! holding one number. A directory without it was written before the
//! version was recorded (format 1: the same trees and keys as format 2);
//! a writer upgrades it by writing the file, a reader leaves it as it is.
//! A directory of a newer format is refused by everyone: its layout is
//! unknown here.
//!
//! Format history (a new layout bumps [`CURRENT`] and adds its migration to
//! [`upgrade`]):
//! - 1: the trees of `store/mod.rs`, no `FORMAT` file.
//! - 2: the same, with `FORMAT`.
//! - 3: domain records in pages (`domain_pages`, see `pages.rs`), no
//!   longer one key each in `domains`; the store moves them on upgrade.

use std::io::Write as _;
use std::path::Path;

use super::error::{Result, StoreError};

/// The format this binary writes and reads.
pub const CURRENT: u32 = 3;
/// The first format with domain records in pages.
pub const PAGED: u32 = 3;
/// The oldest format it can open (reading, or upgrading to [`CURRENT`]).
pub const OLDEST: u32 = 1;

const FILE: &str = "FORMAT";
/// sled's own file in a directory it has written.
const SLED_CONF: &str = "conf";

/// The directory's format: from `FORMAT`, 1 when a sled store is there
/// without it, `None` for a directory no store was written in.
pub fn read(dir: &Path) -> Result<Option<u32>> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            text.trim().parse::<u32>().map(Some).map_err(|_| {
                StoreError::Corrupt(format!("{}: not a format number", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(dir.join(SLED_CONF).exists().then_some(1))
        }
        Err(e) => Err(StoreError::Dir { path, source: e }),
    }
}

/// Refuse a format this binary cannot open, with what to do.
pub fn check(dir: &Path, found: Option<u32>) -> Result<()> {
    match found {
        Some(v) if v > CURRENT => Err(StoreError::Format(format!(
            "{} holds data of format {v}, written by a newer mxscope (this one reads formats \
             {OLDEST} to {CURRENT}): run the newer mxscope on it, or use another --data-dir",
            dir.display()
        ))),
        Some(v) if v < OLDEST => Err(StoreError::Format(format!(
            "{} holds data of format {v}, older than this mxscope can upgrade ({OLDEST}): \
             export it with the mxscope that wrote it",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Bring the directory to [`CURRENT`] (a writer, after sled opened it):
/// each step is crash-safe on its own, and the number is written last,
/// atomically (a temporary file renamed over `FORMAT`, both synced), so a
/// kill leaves the old format or the new one, never a mix.
pub fn upgrade(dir: &Path, found: Option<u32>) -> Result<()> {
    match found {
        Some(CURRENT) => Ok(()),
        // Format 1 → 2: the layout is the same, only the number is new;
        // 2 → 3: the store moved the domain records into pages before.
        None | Some(1) | Some(2) => write(dir, CURRENT),
        Some(other) => check(dir, Some(other)),
    }
}

fn write(dir: &Path, version: u32) -> Result<()> {
    let io = |path: &Path, source| StoreError::Dir {
        path: path.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(format!("{version}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&tmp, e))?;
    let path = dir.join(FILE);
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_checked_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None, "an empty directory");
        std::fs::write(dir.path().join(SLED_CONF), "x").unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(1), "sled without FORMAT");
        upgrade(dir.path(), Some(1)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(CURRENT));
        assert!(!dir.path().join("FORMAT.tmp").exists());
        std::fs::write(dir.path().join(FILE), "9\n").unwrap();
        let err = check(dir.path(), read(dir.path()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("newer mxscope"), "{err}");
        assert!(upgrade(dir.path(), Some(9)).is_err(), "never downgraded");
        std::fs::write(dir.path().join(FILE), "two").unwrap();
        assert!(matches!(read(dir.path()), Err(StoreError::Corrupt(_))));
    }
}
