//! The whole lab, started lazily once per test process; its daemons die with it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::certs::LabCerts;
use crate::dns::Unbound;
use crate::exim::Exim;
use crate::postfix::Postfix;

/// The lab folder: `$MXSCOPE_LAB_DIR`, or `mxscope-lab` in the temp dir.
/// Wiped when the lab starts.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("MXSCOPE_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("mxscope-lab"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the lab folder");
        dir
    })
}

fn sub(name: &str) -> PathBuf {
    let path = dir().join(name);
    std::fs::create_dir_all(&path).expect("creating a lab sub-folder");
    path
}

/// The lab CA and leaves.
pub fn certs() -> &'static LabCerts {
    static CERTS: OnceLock<LabCerts> = OnceLock::new();
    CERTS.get_or_init(|| LabCerts::generate(&sub("certs")).expect("generating lab certificates"))
}

/// Unbound serving `lab.test`.
pub fn dns() -> &'static Unbound {
    static DNS: OnceLock<Unbound> = OnceLock::new();
    DNS.get_or_init(|| Unbound::start(&sub("unbound")).expect("starting the lab's Unbound"))
}

/// Postfix serving every Postfix host of the plan.
pub fn postfix() -> &'static Postfix {
    static POSTFIX: OnceLock<Postfix> = OnceLock::new();
    POSTFIX.get_or_init(|| {
        Postfix::start(&sub("postfix"), certs()).expect("starting the lab's Postfix")
    })
}

/// Exim serving the Exim host of the plan.
pub fn exim() -> &'static Exim {
    static EXIM: OnceLock<Exim> = OnceLock::new();
    EXIM.get_or_init(|| Exim::start(&sub("exim"), certs()).expect("starting the lab's Exim"))
}

/// The hostile and scripted fakes.
pub fn fakes() -> &'static crate::fakes::Fakes {
    static FAKES: OnceLock<crate::fakes::Fakes> = OnceLock::new();
    FAKES.get_or_init(|| crate::fakes::Fakes::start(certs()).expect("starting the lab's fakes"))
}
