//! MTA-STS evaluation (RFC 8461 §4, §5): whether each MX of a domain would
//! satisfy a sender that enforces the domain's policy. A pure function over
//! records, so both the worker (after its probes) and the coordinator's
//! report (a stored policy-only verdict finished against the scan's target
//! records) take it from here. The TXT and policy parsers and the HTTPS fetch
//! are the worker's (`mxscope_worker::mtasts`).

use crate::record::security_policy::{MtaSts, MtaStsVerdict, MxPolicyCheck, Policy, PolicyMode};
use crate::{snake, TargetRecord, Verification};

/// Whether MX host `mx` matches policy pattern `pattern` (RFC 8461 §4.1):
/// exact, or `*.` standing for exactly one leftmost label. Case and a
/// trailing dot are ignored.
pub fn mx_matches(pattern: &str, mx: &str) -> bool {
    let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let (pattern, mx) = (norm(pattern), norm(mx));
    match pattern.strip_prefix("*.") {
        Some(parent) => mx
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => !mx.is_empty() && pattern == mx,
    }
}

/// What the TLS session to one address of an MX showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxSession {
    /// A TLS session: chain verification and name match for this MX name.
    Tls {
        verification: Verification,
        name_ok: bool,
    },
    /// No TLS session (no STARTTLS, a failed handshake, a connection error):
    /// the target's outcome.
    NoTls { outcome: String },
}

/// One (MX name, address) fact; an MX with several addresses has several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxTls {
    pub mx: String,
    pub session: MxSession,
}

/// The facts a probed target gives, one per MX name that points at it.
pub fn mx_tls_facts(target: &TargetRecord) -> Vec<MxTls> {
    target
        .mx_names
        .iter()
        .map(|mx| {
            let session = match target.verification_for(mx) {
                Some(verification) => MxSession::Tls {
                    verification,
                    name_ok: target.name_matches(mx),
                },
                None => MxSession::NoTls {
                    outcome: snake(&target.outcome),
                },
            };
            MxTls {
                mx: mx.clone(),
                session,
            }
        })
        .collect()
}

/// The verdict of a valid TXT record (`txt_id`) and a fetched `policy`.
///
/// `mx_names` are the domain's MX hosts; `per_mx_tls` the TLS facts of their
/// addresses (an MX may appear once per address; every address must pass).
/// An MX without any fact is "not probed" and counts as a failure for an
/// enforcing sender, as does a domain without MX.
pub fn evaluate_policy(
    txt_id: Option<String>,
    policy: Policy,
    mx_names: &[String],
    per_mx_tls: &[MxTls],
) -> MtaSts {
    if policy.mode == PolicyMode::None {
        return MtaSts {
            verdict: MtaStsVerdict::None,
            txt_id,
            policy: Some(policy),
            per_mx: Vec::new(),
            detail: None,
        };
    }
    let per_mx: Vec<MxPolicyCheck> = mx_names
        .iter()
        .map(|mx| check_mx(&policy, mx, per_mx_tls))
        .collect();
    let failing = per_mx.iter().filter(|c| c.reason.is_some()).count();
    let (verdict, detail) = match policy.mode {
        PolicyMode::Testing => (MtaStsVerdict::Testing, None),
        _ if per_mx.is_empty() => (
            MtaStsVerdict::EnforceWouldFail,
            Some("the domain has no MX host to deliver to".to_string()),
        ),
        _ if failing > 0 => (
            MtaStsVerdict::EnforceWouldFail,
            Some(format!("{failing} of {} MX would be refused", per_mx.len())),
        ),
        _ => (MtaStsVerdict::EnforceOk, None),
    };
    MtaSts {
        verdict,
        txt_id,
        policy: Some(policy),
        per_mx,
        detail,
    }
}

/// Finish a stored verdict against TLS facts found later: a distributed
/// scan stores a policy-only verdict (the resolve task has no targets), the
/// report joins it with the scan's target records here.
///
/// Only a verdict with a valid TXT id and a policy in `enforce` or `testing`
/// depends on the MX; every other stored verdict is returned unchanged.
pub fn reevaluate(stored: &MtaSts, mx_names: &[String], per_mx_tls: &[MxTls]) -> MtaSts {
    let (Some(id), Some(policy)) = (&stored.txt_id, &stored.policy) else {
        return stored.clone();
    };
    if policy.mode == PolicyMode::None {
        return stored.clone();
    }
    evaluate_policy(Some(id.clone()), policy.clone(), mx_names, per_mx_tls)
}

/// One MX against the policy and the TLS facts of its addresses.
fn check_mx(policy: &Policy, mx: &str, facts: &[MxTls]) -> MxPolicyCheck {
    let pattern_match = policy.mx.iter().any(|p| mx_matches(p, mx));
    let sessions: Vec<&MxSession> = facts
        .iter()
        .filter(|f| f.mx.eq_ignore_ascii_case(mx))
        .map(|f| &f.session)
        .collect();
    let mut problems = Vec::new();
    if !pattern_match {
        problems.push("matches no mx pattern of the policy".to_string());
    }
    let mut certificate_ok = None;
    if sessions.is_empty() {
        problems.push("not probed: no TLS facts".to_string());
    }
    for session in sessions {
        match session {
            MxSession::Tls {
                verification,
                name_ok,
            } => {
                let ok = *verification == Verification::Valid && *name_ok;
                certificate_ok = Some(certificate_ok.unwrap_or(true) && ok);
                if *verification != Verification::Valid {
                    problems.push(format!("certificate not valid ({})", snake(verification)));
                }
                if !name_ok {
                    problems.push("certificate does not cover the MX name".to_string());
                }
            }
            MxSession::NoTls { outcome } => {
                problems.push(format!("no TLS session ({outcome})"));
            }
        }
    }
    problems.dedup();
    MxPolicyCheck {
        mx: mx.to_string(),
        pattern_match,
        certificate_ok,
        reason: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

#[cfg(test)]
mod tests;
