//! The enumeration of one version, sans-IO: which suites the next hello
//! offers, and what a reply teaches.
//!
//! - `classes` (group testing): the candidates fall into groups of suites
//!   with the same classes; a hello offers every group still open; the
//!   server's pick closes its group and adds its classes; a refusal closes
//!   them all. Hellos = accepted groups + 1.
//! - `suites` (iterative removal): the candidates go in chunks; a hello
//!   offers what is left of the chunk; the pick is recorded and removed; a
//!   refusal ends the chunk. The picks come in the server's order when it
//!   enforces one; one more hello with the accepted suites reversed tells
//!   whether it does. Hellos = accepted + chunks + 1.

use std::collections::BTreeSet;

use mxscope_common::{DepthLevel, SuiteClass, VersionDepth, VersionSupport};

use super::catalog::{self, DepthVersion};
use super::reply::Reply;

/// Most candidates in one hello: 320 bytes of suites, a ClientHello of
/// about 450 bytes. Every suite OpenSSL or GnuTLS still implements fits in
/// the first chunk (tested), so the picks come in the server's order.
pub const CHUNK: usize = 160;

#[derive(Debug)]
enum Mode {
    Classes {
        /// Every candidate with its classes (the group it belongs to).
        candidates: &'static [(u16, Vec<SuiteClass>)],
        open: BTreeSet<Vec<SuiteClass>>,
    },
    Suites {
        chunks: Vec<Vec<u16>>,
        accepted: Vec<u16>,
        /// The reversed hello was sent (or needs not be).
        preference_done: bool,
    },
}

/// The enumeration of one version.
#[derive(Debug)]
pub struct VersionPlan {
    pub version: DepthVersion,
    mode: Mode,
    classes: BTreeSet<SuiteClass>,
    sessions: u32,
    stopped: Option<String>,
    server_preference: Option<bool>,
    done: bool,
    /// What the replies say of the version itself: supported at the first
    /// pick, not supported when every hello was refused.
    support: VersionSupport,
    /// The first suite picked (the version probe's answer).
    first_pick: Option<u16>,
}

impl VersionPlan {
    pub fn new(version: DepthVersion, level: DepthLevel) -> Self {
        let candidates = catalog::candidates(version);
        let mode = if level == DepthLevel::Suites {
            Mode::Suites {
                chunks: candidates
                    .chunks(CHUNK)
                    .map(|chunk| chunk.iter().map(|(id, _)| *id).collect())
                    .collect(),
                accepted: Vec::new(),
                preference_done: false,
            }
        } else {
            let open = candidates.iter().map(|(_, key)| key.clone()).collect();
            Mode::Classes { candidates, open }
        };
        let mut plan = Self {
            version,
            mode,
            classes: BTreeSet::new(),
            sessions: 0,
            stopped: None,
            server_preference: None,
            done: false,
            support: VersionSupport::NotTested,
            first_pick: None,
        };
        if version == DepthVersion::Tls13 && level != DepthLevel::Suites {
            // Every TLS 1.3 suite is AEAD with forward secrecy: nothing to ask.
            plan.classes.insert(SuiteClass::Aead);
            plan.done = true;
        }
        plan
    }

    /// The suites the next hello offers; `None` when the version is done.
    pub fn next(&self) -> Option<Vec<u16>> {
        if self.done {
            return None;
        }
        match &self.mode {
            Mode::Classes { candidates, open } => {
                let offer: Vec<u16> = candidates
                    .iter()
                    .filter(|(_, key)| open.contains(key))
                    .map(|(id, _)| *id)
                    .collect();
                (!offer.is_empty()).then_some(offer)
            }
            Mode::Suites {
                chunks,
                accepted,
                preference_done,
            } => match chunks.first() {
                Some(chunk) => Some(chunk.clone()),
                None if !preference_done && accepted.len() >= 2 => {
                    Some(accepted.iter().rev().copied().collect())
                }
                None => None,
            },
        }
    }

    /// What the answer to the hello that offered `offered` teaches.
    pub fn record(&mut self, offered: &[u16], reply: &Reply) {
        self.sessions += 1;
        match reply {
            Reply::Picked(pick) => {
                self.support = VersionSupport::Supported;
                self.first_pick.get_or_insert(pick.cipher);
            }
            Reply::Refused(_) if self.support == VersionSupport::NotTested => {
                self.support = VersionSupport::NotSupported;
            }
            Reply::Error(_) if self.support != VersionSupport::Supported => {
                self.support = VersionSupport::Error;
            }
            _ => {}
        }
        match (&mut self.mode, reply) {
            (_, Reply::Error(detail)) => {
                self.stopped = Some(detail.clone());
                self.done = true;
            }
            (Mode::Classes { open, .. }, Reply::Picked(pick)) => {
                let key = catalog::classes(pick.cipher);
                self.classes.extend(key.iter().copied());
                open.remove(&key);
            }
            (Mode::Classes { .. }, Reply::Refused(_)) => self.done = true,
            (
                Mode::Suites {
                    chunks,
                    accepted,
                    preference_done,
                },
                reply,
            ) => {
                if chunks.is_empty() {
                    // The reversed hello: a server that follows the client
                    // picks the first suite offered.
                    *preference_done = true;
                    if let Reply::Picked(pick) = reply {
                        self.server_preference = Some(offered.first() != Some(&pick.cipher));
                    }
                    return;
                }
                match reply {
                    Reply::Picked(pick) => {
                        accepted.push(pick.cipher);
                        self.classes.extend(catalog::classes(pick.cipher));
                        if let Some(chunk) = chunks.first_mut() {
                            chunk.retain(|id| *id != pick.cipher);
                            if chunk.is_empty() {
                                chunks.remove(0);
                            }
                        }
                    }
                    _ if self.first_pick.is_none() => {
                        // The first chunk holds every suite OpenSSL and
                        // GnuTLS implement: refused whole, the version is
                        // not spoken (as a version probe would say).
                        self.done = true;
                    }
                    _ => {
                        chunks.remove(0);
                    }
                }
            }
        }
    }

    /// The accepted suites so far (`suites` level), in pick order.
    pub fn accepted(&self) -> &[u16] {
        match &self.mode {
            Mode::Suites { accepted, .. } => accepted,
            Mode::Classes { .. } => &[],
        }
    }

    /// What the replies said of the version; `not_tested` before any.
    pub fn support(&self) -> VersionSupport {
        self.support
    }

    /// The first suite the server picked for this version.
    pub fn first_pick(&self) -> Option<u16> {
        self.first_pick
    }

    /// Stop here: the budget ran out (or the session could not be opened).
    pub fn stop(&mut self, why: impl Into<String>) {
        self.stopped = Some(why.into());
        self.done = true;
    }

    pub fn finish(self) -> VersionDepth {
        let accepted = match &self.mode {
            Mode::Suites { accepted, .. } => {
                accepted.iter().map(|id| catalog::suite_name(*id)).collect()
            }
            Mode::Classes { .. } => Vec::new(),
        };
        VersionDepth {
            classes: self.classes.into_iter().collect(),
            accepted,
            server_preference: self.server_preference,
            groups: Vec::new(),
            sessions: self.sessions,
            complete: self.stopped.is_none(),
            stopped: self.stopped,
        }
    }
}

/// The key-exchange groups of one version, by iterative removal: a hello
/// offers the groups still open; the group the server names (TLS 1.3's key
/// share or retry request, TLS 1.2's ServerKeyExchange) is recorded and
/// removed; a refusal ends it. Hellos = accepted groups + 1.
#[derive(Debug)]
pub struct GroupPlan {
    pub version: DepthVersion,
    /// The suites every hello offers (accepted ones, so that only the
    /// group decides).
    pub suites: Vec<u16>,
    remaining: Vec<u16>,
    accepted: Vec<u16>,
    sessions: u32,
    stopped: Option<String>,
    done: bool,
}

impl GroupPlan {
    pub fn new(version: DepthVersion, suites: Vec<u16>, candidates: &[u16]) -> Self {
        Self {
            version,
            suites,
            remaining: candidates.to_vec(),
            accepted: Vec::new(),
            sessions: 0,
            stopped: None,
            done: false,
        }
    }

    /// The groups the next hello offers; `None` when done.
    pub fn next(&self) -> Option<Vec<u16>> {
        (!self.done && !self.remaining.is_empty()).then(|| self.remaining.clone())
    }

    pub fn record(&mut self, reply: &Reply) {
        self.sessions += 1;
        match reply {
            Reply::Picked(pick) => match pick.group.filter(|g| self.remaining.contains(g)) {
                Some(group) => {
                    self.accepted.push(group);
                    self.remaining.retain(|g| *g != group);
                }
                None => {
                    self.stopped = Some(format!(
                        "the server named group {:?}, which was not offered",
                        pick.group
                    ));
                    self.done = true;
                }
            },
            Reply::Refused(_) => self.done = true,
            Reply::Error(detail) => {
                self.stopped = Some(detail.clone());
                self.done = true;
            }
        }
    }

    pub fn stop(&mut self, why: impl Into<String>) {
        self.stopped = Some(why.into());
        self.done = true;
    }

    /// (group names in pick order, sessions, why stopped early).
    pub fn finish(self) -> (Vec<String>, u32, Option<String>) {
        let names = self
            .accepted
            .iter()
            .map(|g| catalog::group_name(*g))
            .collect();
        (names, self.sessions, self.stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::depth::reply::Pick;
    use crate::tls::legacy::LegacyVersion;

    /// A simulated server (a fake, for the planner's arithmetic only; the
    /// lab's real MTAs and sslyze check the real thing): it accepts
    /// `accepted` and picks by its own order or the client's.
    fn answer(accepted: &[u16], server_order: bool, offered: &[u16]) -> Reply {
        let pick = if server_order {
            accepted.iter().find(|id| offered.contains(id))
        } else {
            offered.iter().find(|id| accepted.contains(id))
        };
        match pick {
            Some(&cipher) => Reply::Picked(Pick {
                version: 0x0303,
                cipher,
                compression: 0,
                renegotiation_info: true,
                extended_master_secret: true,
                retry_request: false,
                group: None,
                heartbeat: false,
            }),
            None => Reply::Refused("alert handshake_failure".into()),
        }
    }

    fn run(level: DepthLevel, accepted: &[u16], server_order: bool) -> VersionDepth {
        let mut plan = VersionPlan::new(DepthVersion::Legacy(LegacyVersion::Tls1_2), level);
        let mut guard = 0;
        while let Some(offer) = plan.next() {
            let reply = answer(accepted, server_order, &offer);
            plan.record(&offer, &reply);
            guard += 1;
            assert!(guard < 1000, "no end");
        }
        plan.finish()
    }

    // AEAD+FS, CBC+FS, RSA GCM, RSA 3DES, DH_anon GCM, RC4.
    const SERVER: [u16; 6] = [0xc030, 0xc014, 0x009d, 0x000a, 0x00a7, 0x0005];

    #[test]
    fn suites_are_all_found_with_accepted_plus_chunks_plus_one_hellos() {
        let chunks = catalog::candidates(DepthVersion::Legacy(LegacyVersion::Tls1_2))
            .len()
            .div_ceil(CHUNK) as u32;
        for server_order in [true, false] {
            let depth = run(DepthLevel::Suites, &SERVER, server_order);
            let mut found: Vec<String> = depth.accepted.clone();
            let mut expected: Vec<String> =
                SERVER.iter().map(|id| catalog::suite_name(*id)).collect();
            if server_order {
                assert_eq!(found, expected, "picks come in the server's order");
            }
            found.sort();
            expected.sort();
            assert_eq!(found, expected);
            assert_eq!(depth.server_preference, Some(server_order));
            assert_eq!(depth.sessions, SERVER.len() as u32 + chunks + 1);
            assert!(depth.complete);
        }
    }

    #[test]
    fn classes_cost_one_hello_per_accepted_group_plus_one() {
        let depth = run(DepthLevel::Classes, &SERVER, true);
        use SuiteClass::*;
        assert_eq!(
            depth.classes,
            vec![Anonymous, Rc4, Block64, Cbc, NoForwardSecrecy, Aead]
        );
        // Six suites in six different groups: six picks and a refusal.
        assert_eq!(depth.sessions, 7);
        let modern = run(DepthLevel::Classes, &[0xc030, 0xc02f, 0xcca8], false);
        assert_eq!((modern.classes, modern.sessions), (vec![Aead], 2));
        let none = run(DepthLevel::Classes, &[], false);
        assert_eq!((none.classes.len(), none.sessions), (0, 1));
    }

    #[test]
    fn an_error_stops_the_version_as_incomplete() {
        let mut plan = VersionPlan::new(
            DepthVersion::Legacy(LegacyVersion::Tls1_2),
            DepthLevel::Suites,
        );
        let offer = plan.next().unwrap();
        plan.record(&offer, &Reply::Error("malformed ServerHello".into()));
        assert!(plan.next().is_none());
        let depth = plan.finish();
        assert!(!depth.complete);
        assert_eq!(depth.stopped.as_deref(), Some("malformed ServerHello"));
    }
}
