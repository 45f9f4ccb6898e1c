//! What each step's answer teaches the run: a version's plan, the group
//! enumeration, the fallback, SSLv2, the DH prime, the intrusive checks.

use mxscope_common::Tested;

use super::catalog::DepthVersion;
use super::reply::Reply;
use super::{robot, vulns, Answer, DepthRun, Step};
use crate::tls::legacy::LegacyVersion;

impl DepthRun {
    /// What came back for `step`.
    pub fn record(&mut self, step: &Step, answer: Answer) {
        self.depth.sessions += 1;
        match (step, answer) {
            (Step::Fallback { .. }, Answer::Tls(Reply::Picked(_))) => {
                self.depth.fallback_scsv = Tested::No;
            }
            (Step::Fallback { .. }, Answer::Tls(Reply::Refused(detail)))
                if detail.contains("inappropriate_fallback") =>
            {
                self.depth.fallback_scsv = Tested::Yes;
            }
            (Step::Fallback { .. }, _) => self.depth.fallback_scsv = Tested::Error,
            (Step::Sslv2, Answer::Sslv2(answered)) => {
                self.depth.sslv2 = Tested::from_bool(answered);
            }
            (Step::Sslv2, _) => self.depth.sslv2 = Tested::Error,
            (Step::Vuln { check, .. }, answer) => {
                let verdict = match answer {
                    Answer::Vuln(verdict) => verdict,
                    _ => Tested::Error,
                };
                match check {
                    vulns::Check::Heartbleed => self.depth.heartbleed = verdict,
                    vulns::Check::CcsInjection => self.depth.ccs_injection = verdict,
                }
            }
            (Step::Dhe { .. }, answer) => {
                self.dhe_asked = true;
                if let Answer::Dh { bits, group } = answer {
                    self.depth.dh_bits = Some(bits);
                    self.depth.dh_group = group.map(str::to_owned);
                }
            }
            (Step::Robot { .. }, answer) => {
                self.robot.record(match answer {
                    Answer::Robot(outcome) => outcome,
                    Answer::Failed(detail) => robot::Outcome::Failed(detail),
                    _ => robot::Outcome::Failed("not a ROBOT session's answer".into()),
                });
                if let Some((verdict, detail)) = self.robot.verdict() {
                    self.depth.robot = *verdict;
                    self.depth.robot_detail = Some(detail.clone());
                }
            }
            (Step::Groups { index, .. }, answer) => {
                let Some(plan) = self.groups.iter_mut().flatten().nth(*index) else {
                    return;
                };
                plan.record(&match answer {
                    Answer::Tls(reply) => reply,
                    Answer::Sslv2(_) | Answer::Vuln(_) | Answer::Robot(_) | Answer::Dh { .. } => {
                        Reply::Error("not a TLS hello's answer".into())
                    }
                    Answer::Failed(detail) => Reply::Error(detail),
                });
            }
            (Step::Version { index, offered }, answer) => {
                let Some(plan) = self.plans.get_mut(*index) else {
                    return;
                };
                let reply = match answer {
                    Answer::Tls(reply) => reply,
                    Answer::Sslv2(_) | Answer::Vuln(_) | Answer::Robot(_) | Answer::Dh { .. } => {
                        Reply::Error("not a TLS hello's answer".into())
                    }
                    Answer::Failed(detail) => Reply::Error(detail),
                };
                let facts_version = !matches!(
                    plan.version,
                    DepthVersion::Tls13 | DepthVersion::Legacy(LegacyVersion::Ssl3)
                );
                if let (Reply::Picked(pick), true, false) =
                    (&reply, facts_version, self.facts_taken)
                {
                    // Versions go newest first: this is the highest one.
                    self.facts_taken = true;
                    self.depth.secure_renegotiation = Tested::from_bool(pick.renegotiation_info);
                    self.depth.extended_master_secret =
                        Tested::from_bool(pick.extended_master_secret);
                    self.depth.compression = Tested::from_bool(pick.compression != 0);
                }
                plan.record(offered, &reply);
            }
        }
    }
}
