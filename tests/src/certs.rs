//! Lab certificates. OWNED BY THE MTA HELPER — stub.

use std::path::{Path, PathBuf};

/// The lab CA and every leaf the lab's servers use, written as PEM files.
#[derive(Debug)]
pub struct LabCerts {
    /// Folder holding the PEM files.
    pub dir: PathBuf,
    /// The lab CA certificate (PEM): pass it as `--ca-file`.
    pub ca_pem: PathBuf,
}

impl LabCerts {
    /// Generate the CA and all leaves into `dir`, valid around now.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        let _ = dir;
        todo!("mta helper")
    }

    /// Issue an extra lab-CA leaf for `name` (RSA-2048): (chain PEM, key PEM).
    pub fn issue(&self, name: &str) -> anyhow::Result<(String, String)> {
        let _ = name;
        todo!("mta helper")
    }
}
