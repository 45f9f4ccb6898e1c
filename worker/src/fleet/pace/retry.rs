//! Backing off from targets that say "not now" (DESIGN §8): a `421` or other
//! `4xx` greeting, a `4xx` reply to EHLO/HELO, or a connection closed or
//! reset before the greeting is tried again later, with growing delays and
//! a bounded number of sessions.
//!
//! This is the scheduling layer, not the SMTP dialogue: a session runs to
//! its end as usual, and its record (outcome, phase, greeting, detail)
//! decides whether it is worth another one. While a target waits, it holds
//! neither a session permit nor a session slot: other targets run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::options::defaults;
use mxscope_common::politeness::{Attempt, Retries};
use mxscope_common::{Outcome, Phase, TargetRecord};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::fleet::pace::pacing::{Limits, Pacer};
use crate::fleet::pace::slots::Pool;

/// Default sessions per target when it keeps saying "not now".
pub const DEFAULT_ATTEMPTS: u32 = defaults::RETRY_ATTEMPTS;
/// Most sessions per target a scan may ask for.
pub const MAX_ATTEMPTS: u32 = defaults::MAX_RETRY_ATTEMPTS;
/// Default wait before the first retry; each further wait doubles.
pub const DEFAULT_FIRST_DELAY: Duration = defaults::RETRY_DELAY;
/// No single wait is longer.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// How a rate-limited target is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most sessions per target (1 = never retry).
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            first_delay: DEFAULT_FIRST_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 = the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(MAX_DELAY)
    }
}

/// Whether a session's record says "try again later"; `Some(code)` with
/// the reply code when there was one (`Some(None)` for a reset).
pub fn retryable(record: &TargetRecord) -> Option<Option<u16>> {
    match (record.outcome, record.phase) {
        (Outcome::GreetingRefused, Phase::Greeting) => {
            let code = record.greeting.as_ref().map(|g| g.code)?;
            (400..500).contains(&code).then_some(Some(code))
        }
        (Outcome::EhloFailed, Phase::Ehlo | Phase::Helo) => {
            let code = leading_code(record.detail.as_deref()?)?;
            (400..500).contains(&code).then_some(Some(code))
        }
        (Outcome::ProtocolError, Phase::Greeting) if record.greeting.is_none() => {
            let detail = record.detail.as_deref().unwrap_or("").to_ascii_lowercase();
            (detail.contains("closed") || detail.contains("reset")).then_some(None)
        }
        _ => None,
    }
}

/// `421 try later` → 421.
fn leading_code(detail: &str) -> Option<u16> {
    let digits = detail.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if detail.len() > 3 && !detail[3..].starts_with([' ', '-']) {
        return None;
    }
    digits.parse().ok()
}

/// What a session waits for: its turn by the pacing limits, then a session
/// permit; and what a waiting target gives back.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The session permits and slots.
    pub sessions: Pool,
    pub pacer: Arc<Pacer>,
    pub limits: Limits,
}

impl Gate {
    /// Wait for the turn of a session to `ip`, then for a session permit.
    async fn enter(&self, ip: std::net::IpAddr) -> Option<OwnedSemaphorePermit> {
        self.pacer.admit(ip, &self.limits).await;
        self.sessions.permits.clone().acquire_owned().await.ok()
    }
}

/// Run `session` (to `ip`) until its record is not retryable or the
/// attempts run out. Every session waits for its pacing turn and a permit;
/// between attempts the target holds neither a permit nor its slot.
pub async fn run<S, Fut>(
    policy: RetryPolicy,
    gate: &Gate,
    ip: std::net::IpAddr,
    mut session: S,
) -> TargetRecord
where
    S: FnMut() -> Fut,
    Fut: Future<Output = TargetRecord>,
{
    let started = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        let permit = gate.enter(ip).await;
        let at_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Counted while it holds its permit: at most --concurrency.
        let in_flight = crate::metrics::session();
        let mut record = session().await;
        drop(in_flight);
        drop(permit);
        let verdict = retryable(&record);
        let attempt = Attempt {
            outcome: record.outcome,
            phase: record.phase,
            code: verdict.flatten(),
            detail: record.detail.clone(),
            at_ms,
        };
        attempts.push(attempt);
        let made = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
        if verdict.is_none() || made >= policy.attempts.max(1) {
            if made > 1 {
                record.retries = Some(Retries {
                    attempts,
                    after_retry: true,
                    still_limited: verdict.is_some(),
                });
            }
            return record;
        }
        // Wait without holding a session or a slot.
        gate.sessions.slots.park();
        tokio::time::sleep(policy.delay(made - 1)).await;
        gate.sessions.slots.unpark();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use mxscope_common::wire::task::SlotKind;
    use mxscope_common::Reply;

    use super::*;

    fn record(outcome: Outcome, phase: Phase, greeting: Option<u16>, detail: &str) -> TargetRecord {
        let mut r = TargetRecord::new("192.0.2.1".parse().unwrap(), 25, vec!["mx".into()]);
        r.outcome = outcome;
        r.phase = phase;
        r.greeting = greeting.map(|code| Reply {
            code,
            text: "busy".into(),
        });
        r.detail = Some(detail.into());
        r
    }

    #[test]
    fn what_is_worth_another_session() {
        use Outcome::*;
        let cases = [
            (
                record(GreetingRefused, Phase::Greeting, Some(421), "421 busy"),
                Some(Some(421)),
            ),
            (
                record(GreetingRefused, Phase::Greeting, Some(450), "450 later"),
                Some(Some(450)),
            ),
            (
                record(GreetingRefused, Phase::Greeting, Some(554), "554 go away"),
                None,
            ),
            (
                record(EhloFailed, Phase::Ehlo, None, "421 closing"),
                Some(Some(421)),
            ),
            (
                record(EhloFailed, Phase::Helo, None, "451 try later"),
                Some(Some(451)),
            ),
            (record(EhloFailed, Phase::Helo, None, "550 no"), None),
            (
                record(
                    ProtocolError,
                    Phase::Greeting,
                    None,
                    "greeting: connection closed by the server",
                ),
                Some(None),
            ),
            (
                record(
                    ProtocolError,
                    Phase::Greeting,
                    None,
                    "greeting: connection reset by peer (os error 104)",
                ),
                Some(None),
            ),
            (
                record(
                    ProtocolError,
                    Phase::Greeting,
                    None,
                    "greeting: line too long",
                ),
                None,
            ),
            (
                record(
                    Timeout,
                    Phase::Greeting,
                    None,
                    "greeting: no complete reply",
                ),
                None,
            ),
            (record(StarttlsOk, Phase::Done, Some(220), ""), None),
        ];
        for (record, expected) in cases {
            assert_eq!(retryable(&record), expected, "{:?}", record.detail);
        }
        assert_eq!(leading_code("4213 x"), None);
        assert_eq!(leading_code("42"), None);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0), Duration::from_secs(60));
        assert_eq!(policy.delay(1), Duration::from_secs(120));
        assert_eq!(policy.delay(5), MAX_DELAY);
        assert_eq!(policy.delay(40), MAX_DELAY);
    }

    fn gate(permits: usize) -> Gate {
        Gate {
            sessions: Pool::new(SlotKind::Session, permits),
            pacer: Arc::new(Pacer::default()),
            limits: Limits::default(),
        }
    }

    fn ip() -> std::net::IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_server_is_retried_later_without_holding_its_permit() {
        let gate = gate(1);
        let sessions = AtomicU32::new(0);
        let policy = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_secs(30),
        };
        let claim = gate.sessions.slots.claim(1);
        let probe = run(policy, &gate, ip(), || async {
            match sessions.fetch_add(1, Ordering::SeqCst) {
                0 => record(
                    Outcome::GreetingRefused,
                    Phase::Greeting,
                    Some(421),
                    "421 busy",
                ),
                _ => record(Outcome::StarttlsOk, Phase::Done, Some(220), ""),
            }
        });
        tokio::pin!(probe);
        // After the first session the permit and the slot are free for others.
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut probe)
            .await
            .is_err());
        assert_eq!(gate.sessions.permits.available_permits(), 1);
        assert_eq!(gate.sessions.slots.outstanding(), 0);
        let started = Instant::now();
        let record = probe.await;
        assert!(started.elapsed() >= Duration::from_secs(28));
        assert_eq!(record.outcome, Outcome::StarttlsOk);
        let retries = record.retries.unwrap();
        assert!(retries.after_retry && !retries.still_limited);
        assert_eq!(retries.attempts.len(), 2);
        assert_eq!(retries.attempts[0].code, Some(421));
        assert!(retries.attempts[1].at_ms >= 30_000);
        assert_eq!(
            gate.sessions.slots.outstanding(),
            1,
            "the claim holds its slot again"
        );
        drop(claim);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_a_lasting_limit_is_said() {
        let gate = gate(1);
        let sessions = AtomicU32::new(0);
        let policy = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_secs(10),
        };
        let started = Instant::now();
        let limited = run(policy, &gate, ip(), || async {
            sessions.fetch_add(1, Ordering::SeqCst);
            record(
                Outcome::GreetingRefused,
                Phase::Greeting,
                Some(421),
                "421 busy",
            )
        })
        .await;
        assert_eq!(sessions.load(Ordering::SeqCst), 3);
        // 10 s, then 20 s.
        assert!(started.elapsed() >= Duration::from_secs(30));
        let retries = limited.retries.unwrap();
        assert!(retries.still_limited);
        assert_eq!(retries.attempts.len(), 3);

        // Not retryable: one session, no history.
        let once = run(policy, &gate, ip(), || async {
            record(Outcome::NoStarttls, Phase::Ehlo, Some(220), "250 ok")
        })
        .await;
        assert_eq!(once.retries, None);
    }
}
