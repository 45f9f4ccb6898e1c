//! The whole lab, started lazily once per test process; its daemons die with it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::certs::LabCerts;
use crate::dns::knot::Knot;
use crate::dns::resolvers::{Flavor, LabResolver};
use crate::dns::Unbound;
use crate::mta::exim::Exim;
use crate::mta::haraka::Haraka;
use crate::mta::opensmtpd::OpenSmtpd;
use crate::mta::postfix::Postfix;
use crate::mta::sendmail::Sendmail;
use crate::nginx::Nginx;
use crate::scripted::fakes::Fakes;

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

/// Start a component once per process. A failure is remembered, so later
/// tests fail at once with the first error instead of retrying a slow start.
fn once<T>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    start: impl FnOnce() -> anyhow::Result<T>,
) -> &'static T {
    match cell.get_or_init(|| start().map_err(|e| format!("{e:#}"))) {
        Ok(component) => component,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// The lab CA and leaves.
pub fn certs() -> &'static LabCerts {
    static CERTS: OnceLock<Result<LabCerts, String>> = OnceLock::new();
    once(&CERTS, "generating lab certificates", || {
        LabCerts::generate(&sub("certs"))
    })
}

/// Unbound serving `lab.test`.
pub fn dns() -> &'static Unbound {
    static DNS: OnceLock<Result<Unbound, String>> = OnceLock::new();
    once(&DNS, "starting the lab's Unbound", || {
        Unbound::start(&sub("unbound"))
    })
}

/// Postfix serving every Postfix host of the plan.
pub fn postfix() -> &'static Postfix {
    static POSTFIX: OnceLock<Result<Postfix, String>> = OnceLock::new();
    once(&POSTFIX, "starting the lab's Postfix", || {
        Postfix::start(&sub("postfix"), certs())
    })
}

/// Exim serving the Exim host of the plan.
pub fn exim() -> &'static Exim {
    static EXIM: OnceLock<Result<Exim, String>> = OnceLock::new();
    once(&EXIM, "starting the lab's Exim", || {
        Exim::start(&sub("exim"), certs())
    })
}

/// OpenSMTPD serving its host of the plan (its TLS fails, see [`crate::mta::opensmtpd`]).
pub fn opensmtpd() -> &'static OpenSmtpd {
    static OPENSMTPD: OnceLock<Result<OpenSmtpd, String>> = OnceLock::new();
    once(&OPENSMTPD, "starting the lab's OpenSMTPD", || {
        OpenSmtpd::start(&sub("opensmtpd"), certs())
    })
}

/// Haraka serving its host of the plan.
pub fn haraka() -> &'static Haraka {
    static HARAKA: OnceLock<Result<Haraka, String>> = OnceLock::new();
    once(&HARAKA, "starting the lab's Haraka", || {
        Haraka::start(&sub("haraka"), certs())
    })
}

/// Sendmail serving its host of the plan.
pub fn sendmail() -> &'static Sendmail {
    static SENDMAIL: OnceLock<Result<Sendmail, String>> = OnceLock::new();
    once(&SENDMAIL, "starting the lab's Sendmail", || {
        Sendmail::start(&sub("sendmail"), certs())
    })
}

/// The hostile and scripted fakes.
pub fn fakes() -> &'static Fakes {
    static FAKES: OnceLock<Result<Fakes, String>> = OnceLock::new();
    once(&FAKES, "starting the lab's fakes", || Fakes::start(certs()))
}

/// Knot serving the signed DNSSEC lab (private root, `sec.test` and friends).
pub fn knot() -> &'static Knot {
    static KNOT: OnceLock<Result<Knot, String>> = OnceLock::new();
    once(&KNOT, "starting the lab's Knot", || {
        Knot::start(&sub("knot"), certs())
    })
}

/// nginx serving the MTA-STS policy hosts (lab-CA certificates).
pub fn nginx() -> &'static Nginx {
    static NGINX: OnceLock<Result<Nginx, String>> = OnceLock::new();
    once(&NGINX, "starting the lab's nginx", || {
        Nginx::start(&sub("nginx"), certs())
    })
}

/// Unbound validating from the private root, in front of Knot.
pub fn validating_resolver() -> &'static LabResolver {
    static RESOLVER: OnceLock<Result<LabResolver, String>> = OnceLock::new();
    once(&RESOLVER, "starting the lab's validating Unbound", || {
        let knot = knot();
        LabResolver::start(
            &sub("unbound-validating"),
            Flavor::Validating,
            knot.addr(),
            &knot.trust_anchor(),
        )
    })
}

/// Unbound as a forwarder that strips DNSSEC records, in front of Knot.
pub fn stripping_resolver() -> &'static LabResolver {
    static RESOLVER: OnceLock<Result<LabResolver, String>> = OnceLock::new();
    once(&RESOLVER, "starting the lab's stripping forwarder", || {
        let knot = knot();
        LabResolver::start(
            &sub("unbound-stripping"),
            Flavor::Stripping,
            stripped_knot().addr(),
            &knot.trust_anchor(),
        )
    })
}

/// The Knot zones with their DNSSEC records stripped (the stripping
/// forwarder's upstream).
pub fn stripped_knot() -> &'static Knot {
    static KNOT: OnceLock<Result<Knot, String>> = OnceLock::new();
    once(&KNOT, "starting the lab's stripped Knot", || {
        knot().start_stripped(&sub("knot-stripped"))
    })
}
