//! `--tls-depth` (DESIGN §4 "TLS depth, paid in sessions"): what testssl.sh
//! and sslyze say about a server's TLS, in as few sessions as the
//! information needs. Each step is one more SMTP session to the IP (the
//! caller opens it after STARTTLS, waiting for the per-IP gap) carrying one
//! hand-built hello; nothing is ever derived from the answer, the
//! connection is dropped after the ServerHello.
//!
//! Sans-IO: [`DepthRun`] says which hello to send next ([`Step`]) and takes
//! what came back; [`ask`] is the thin driver of one step on one stream.
//!
//! Layout: `ask` (the driver of one step), `catalog` (candidate suites per version), `hello` (the
//! ClientHellos and the SSLv2 hello), `reply` (what an answer says), `plan`
//! (the enumeration of one version), `record` (what each answer teaches the
//! run), `vulns` and `robot` (the intrusive checks).

mod ask;
pub mod catalog;
pub mod hello;
pub mod plan;
mod record;
pub mod reply;
pub mod robot;
pub mod vulns;

use mxscope_common::{DepthLevel, Protocols, Tested, TlsDepth, VersionSupport};

use crate::tls::legacy::{self, LegacyVersion};
pub use ask::ask;
use catalog::DepthVersion;
use plan::{GroupPlan, VersionPlan};
use reply::Reply;

/// Most bytes read for one answer: a ServerHello comes first.
pub(crate) const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// What one step asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A hello for the version enumerated at this index of the run.
    Version { index: usize, offered: Vec<u16> },
    /// A hello one version below the highest, with TLS_FALLBACK_SCSV.
    Fallback {
        version: LegacyVersion,
        offered: Vec<u16>,
    },
    /// An SSLv2 CLIENT-HELLO.
    Sslv2,
    /// An intrusive check on `version` (`vulns` level).
    Vuln {
        check: vulns::Check,
        version: LegacyVersion,
        suites: Vec<u16>,
    },
    /// One ROBOT session on `version` (`vulns` level).
    Robot {
        payload: robot::Payload,
        version: LegacyVersion,
    },
    /// A hello offering only finite-field DHE suites (`suites` of
    /// `version`), read to its ServerKeyExchange: the DH prime.
    Dhe {
        version: LegacyVersion,
        suites: Vec<u16>,
    },
    /// A hello for the group enumeration at this index, offering `groups`
    /// with `suites` (`suites` level).
    Groups {
        index: usize,
        version: DepthVersion,
        suites: Vec<u16>,
        groups: Vec<u16>,
    },
}

/// What came back for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Tls(Reply),
    Sslv2(bool),
    /// An intrusive check's verdict (`yes`: vulnerable).
    Vuln(Tested),
    /// What one ROBOT session came to.
    Robot(robot::Outcome),
    /// The DHE hello's prime: its size and its name when known.
    Dh {
        bits: u32,
        group: Option<&'static str>,
    },
    /// No session (connect, greeting or STARTTLS failed) or no answer.
    Failed(String),
}

/// The depth probe of one target.
#[derive(Debug)]
pub struct DepthRun {
    level: DepthLevel,
    budget: u32,
    plans: Vec<VersionPlan>,
    /// The group enumerations, planned once the versions are done.
    groups: Option<Vec<GroupPlan>>,
    /// The versions known spoken before the run (the main session, the
    /// version probes when they ran).
    spoken: Vec<DepthVersion>,
    /// Whether the pre-1.3 facts (renegotiation, EMS, compression) were
    /// taken from a pick.
    facts_taken: bool,
    /// Whether the DHE hello was sent.
    dhe_asked: bool,
    robot: robot::Oracle,
    depth: TlsDepth,
}

impl DepthRun {
    /// A run over TLS 1.3 when the main session spoke it, and every version
    /// before it that `protocols` does not already know to be unsupported:
    /// the first hellos of each version answer the version probe too
    /// ([`Self::support`]). At most `budget` sessions.
    pub fn new(level: DepthLevel, budget: u32, protocols: &Protocols) -> Self {
        let known = |v: DepthVersion| match v {
            DepthVersion::Tls13 => protocols.tls1_3,
            DepthVersion::Legacy(LegacyVersion::Tls1_2) => protocols.tls1_2,
            DepthVersion::Legacy(LegacyVersion::Tls1_1) => protocols.tls1_1,
            DepthVersion::Legacy(LegacyVersion::Tls1_0) => protocols.tls1_0,
            DepthVersion::Legacy(LegacyVersion::Ssl3) => protocols.ssl3,
        };
        let plans = DepthVersion::ALL
            .into_iter()
            .filter(|v| match v {
                DepthVersion::Tls13 => known(*v) == VersionSupport::Supported,
                DepthVersion::Legacy(_) => known(*v) != VersionSupport::NotSupported,
            })
            .map(|v| VersionPlan::new(v, level))
            .collect();
        Self {
            level,
            budget,
            plans,
            groups: None,
            spoken: DepthVersion::ALL
                .into_iter()
                .filter(|v| known(*v) == VersionSupport::Supported)
                .collect(),
            facts_taken: false,
            dhe_asked: false,
            robot: robot::Oracle::default(),
            depth: TlsDepth {
                level,
                ..TlsDepth::default()
            },
        }
    }

    /// The next step, or `None` when done: each version, newest first, then
    /// the fallback SCSV and SSLv2. A step over the budget is not taken:
    /// what it would have measured is listed in `not_measured`.
    pub fn next_step(&mut self) -> Option<Step> {
        if self.groups.is_none() && self.plans.iter().all(|p| p.next().is_none()) {
            self.groups = Some(self.plan_groups());
        }
        let step = self.pending()?;
        if self.depth.sessions >= self.budget {
            self.exhaust();
            return None;
        }
        Some(step)
    }

    fn pending(&self) -> Option<Step> {
        let version =
            self.plans.iter().enumerate().find_map(|(index, plan)| {
                plan.next().map(|offered| Step::Version { index, offered })
            });
        if version.is_some() {
            return version;
        }
        let groups = self
            .groups
            .iter()
            .flatten()
            .enumerate()
            .find_map(|(index, plan)| {
                plan.next().map(|groups| Step::Groups {
                    index,
                    version: plan.version,
                    suites: plan.suites.clone(),
                    groups,
                })
            });
        if groups.is_some() {
            return groups;
        }
        if let Some(step) = self.dhe() {
            return Some(step);
        }
        if self.depth.fallback_scsv == Tested::NotTested {
            if let Some(version) = self.fallback() {
                let offered = fallback_suites(version);
                return Some(Step::Fallback { version, offered });
            }
        }
        if self.depth.sslv2 == Tested::NotTested {
            return Some(Step::Sslv2);
        }
        if self.level != DepthLevel::Vulns {
            return None;
        }
        let version = self.highest_legacy()?;
        let suites = fallback_suites(version);
        let check = if self.depth.heartbleed == Tested::NotTested {
            vulns::Check::Heartbleed
        } else if self.depth.ccs_injection == Tested::NotTested {
            vulns::Check::CcsInjection
        } else {
            let payload = self.robot.next()?;
            return Some(Step::Robot { payload, version });
        };
        Some(Step::Vuln {
            check,
            version,
            suites,
        })
    }

    /// The DHE hello on the newest version before TLS 1.3, once: the DH
    /// prime a server that prefers ECDHE never shows otherwise (Logjam).
    /// Authenticated DHE only: Logjam downgrades authenticated sessions, and
    /// anonymous suites are a finding of their own (OpenSSL's automatic DH
    /// gives them other primes: 1024 bits for its 128-bit ones).
    fn dhe(&self) -> Option<Step> {
        if self.dhe_asked {
            return None;
        }
        let version = self.highest_legacy()?;
        let suites: Vec<u16> = catalog::candidates(DepthVersion::Legacy(version))
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| {
                let name = catalog::suite_name(*id);
                name.contains("_DHE_") && !name.contains("PSK")
            })
            .collect();
        (!suites.is_empty()).then_some(Step::Dhe { version, suites })
    }

    /// The newest version before TLS 1.3 (SSLv3 aside) the server speaks:
    /// where the intrusive checks go.
    fn highest_legacy(&self) -> Option<LegacyVersion> {
        self.plans.iter().find_map(|p| match p.version {
            DepthVersion::Legacy(v)
                if v != LegacyVersion::Ssl3
                    && (p.support() == VersionSupport::Supported
                        || self.spoken.contains(&p.version)) =>
            {
                Some(v)
            }
            _ => None,
        })
    }

    /// At the `suites` level: TLS 1.3's groups when it is spoken, and TLS
    /// 1.2's ECDHE curves when an ECDHE suite was accepted.
    fn plan_groups(&self) -> Vec<GroupPlan> {
        if self.level != DepthLevel::Suites {
            return Vec::new();
        }
        self.plans
            .iter()
            .filter_map(|p| match p.version {
                DepthVersion::Tls13 if p.support() == VersionSupport::Supported => {
                    Some(GroupPlan::new(
                        p.version,
                        catalog::TLS13_SUITES.to_vec(),
                        &catalog::TLS13_GROUPS,
                    ))
                }
                DepthVersion::Legacy(LegacyVersion::Tls1_2) => {
                    let ecdhe: Vec<u16> = p
                        .accepted()
                        .iter()
                        .copied()
                        .filter(|id| catalog::suite_name(*id).contains("_ECDHE_"))
                        .collect();
                    (!ecdhe.is_empty())
                        .then(|| GroupPlan::new(p.version, ecdhe, &catalog::EC_GROUPS))
                }
                _ => None,
            })
            .collect()
    }

    /// One supported version below the highest, for the fallback hello
    /// (none when only one version is spoken).
    fn fallback(&self) -> Option<LegacyVersion> {
        let mut supported = self.plans.iter().filter_map(|p| {
            let spoken =
                p.support() == VersionSupport::Supported || self.spoken.contains(&p.version);
            spoken.then_some(p.version)
        });
        supported.next()?;
        match supported.next()? {
            DepthVersion::Legacy(version) => Some(version),
            DepthVersion::Tls13 => None,
        }
    }

    fn exhaust(&mut self) {
        let budget = self.budget;
        let level = self.level;
        for plan in &mut self.plans {
            if plan.next().is_some() {
                self.depth
                    .not_measured
                    .push(format!("{} {level}", plan.version.key()));
                plan.stop(format!("per-IP budget of {budget} sessions spent"));
            }
        }
        // Groups not yet planned (the versions ran out first) were not
        // measured; planned and empty means there was nothing to enumerate.
        if self.groups.is_none() && level == DepthLevel::Suites {
            self.depth.not_measured.push("groups".into());
        }
        let groups = self.groups.get_or_insert_with(Vec::new);
        for plan in groups.iter_mut() {
            if plan.next().is_some() {
                self.depth
                    .not_measured
                    .push(format!("{} groups", plan.version.key()));
                plan.stop(format!("per-IP budget of {budget} sessions spent"));
            }
        }
        if self.dhe().is_some() {
            self.depth.not_measured.push("dh_group".into());
            self.dhe_asked = true;
        }
        if self.depth.fallback_scsv == Tested::NotTested && self.fallback().is_some() {
            self.depth.not_measured.push("fallback_scsv".into());
        }
        if self.depth.sslv2 == Tested::NotTested {
            self.depth.not_measured.push("sslv2".into());
        }
        if level == DepthLevel::Vulns && self.highest_legacy().is_some() {
            if self.depth.heartbleed == Tested::NotTested {
                self.depth.not_measured.push("heartbleed".into());
            }
            if self.depth.ccs_injection == Tested::NotTested {
                self.depth.not_measured.push("ccs_injection".into());
            }
            if self.depth.robot == Tested::NotTested {
                self.depth.not_measured.push("robot".into());
            }
        }
    }

    /// What the hellos said of each version they enumerated (the version
    /// probe's answer: support and the first suite picked); versions the
    /// run never asked are absent.
    pub fn support(&self) -> Vec<(DepthVersion, VersionSupport, Option<String>)> {
        self.plans
            .iter()
            .filter(|p| p.support() != VersionSupport::NotTested)
            .map(|p| {
                (
                    p.version,
                    p.support(),
                    p.first_pick().map(catalog::suite_name),
                )
            })
            .collect()
    }

    pub fn finish(mut self) -> TlsDepth {
        for plan in self.plans {
            if plan.support() == VersionSupport::NotSupported {
                continue;
            }
            let key = plan.version.key().to_owned();
            self.depth.versions.insert(key, plan.finish());
        }
        for plan in self.groups.into_iter().flatten() {
            let key = plan.version.key().to_owned();
            let (groups, sessions, stopped) = plan.finish();
            let version = self.depth.versions.entry(key).or_default();
            version.groups = groups;
            version.sessions += sessions;
            if stopped.is_some() {
                version.complete = false;
                version.stopped = version.stopped.take().or(stopped);
            }
        }
        self.depth
    }

    /// The version a `Step::Version` enumerates.
    pub fn version_of(&self, step: &Step) -> Option<DepthVersion> {
        match step {
            Step::Version { index, .. } => self.plans.get(*index).map(|p| p.version),
            Step::Fallback { version, .. } => Some(DepthVersion::Legacy(*version)),
            Step::Groups { version, .. } => Some(*version),
            Step::Vuln { version, .. }
            | Step::Robot { version, .. }
            | Step::Dhe { version, .. } => Some(DepthVersion::Legacy(*version)),
            Step::Sslv2 => None,
        }
    }
}

/// The suites of the fallback hello: the version probes' permissive list,
/// those that fit the version.
fn fallback_suites(version: LegacyVersion) -> Vec<u16> {
    let fit = catalog::candidates(DepthVersion::Legacy(version));
    legacy::permissive_suites()
        .iter()
        .copied()
        .filter(|id| fit.iter().any(|(candidate, _)| candidate == id))
        .collect()
}

#[cfg(test)]
mod tests;
