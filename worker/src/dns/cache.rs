//! The cache of exchange addresses: a national list puts millions of
//! domains on a few thousand MX hosts, so each host's A and AAAA are asked
//! once per TTL, and concurrent askers of one name share one query.
//!
//! Bounded: at most [`CACHE_ENTRIES`] names; when full, expired entries go
//! first, then arbitrary ones down to three quarters.
//!
//! Above it, [`Exchanges`] keeps each exchange's merged addresses (both
//! lookups) under the exchange's normalized name, until the
//! earlier of its two answers expires: a hit skips parsing the name, two
//! cache lookups and the merge — per domain of a national list.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::rr::{Name, Record, RecordType};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::answers::Failure;

/// Most cached (name, type) pairs: a few thousand MX hosts, twice, with room.
pub const CACHE_ENTRIES: usize = 16_384;

/// A lookup's records, shared between the askers and the cache.
pub(super) type Records = Arc<[Record]>;

/// What one lookup gave and until when it holds.
#[derive(Debug)]
struct Cached {
    result: Result<Records, Failure>,
    expires: Instant,
}

type Slot = Arc<OnceCell<Cached>>;

#[derive(Debug, Default)]
pub(super) struct AddressCache {
    entries: Mutex<HashMap<(String, u16), Slot>>,
}

impl AddressCache {
    /// The cached answer to `name`/`rtype`, or the one `fetch` gives (with
    /// how long it may be kept; `None`: not kept). Concurrent callers for
    /// one name wait for the same fetch.
    pub(super) async fn get_or_fetch<F, Fut>(
        &self,
        name: &Name,
        rtype: RecordType,
        fetch: F,
    ) -> (Result<Records, Failure>, Instant)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (Result<Records, Failure>, Option<Duration>)>,
    {
        let key = (name.to_ascii().to_ascii_lowercase(), u16::from(rtype));
        let slot = {
            let now = Instant::now();
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match entries.get(&key) {
                Some(slot) if !expired(slot, now) => slot.clone(),
                _ => {
                    if entries.len() >= CACHE_ENTRIES {
                        make_room(&mut entries, |slot| expired(slot, now));
                    }
                    let slot = Slot::default();
                    entries.insert(key, slot.clone());
                    slot
                }
            }
        };
        let cached = slot
            .get_or_init(|| async {
                let (result, ttl) = fetch().await;
                Cached {
                    result,
                    expires: Instant::now() + ttl.unwrap_or(Duration::ZERO),
                }
            })
            .await;
        (cached.result.clone(), cached.expires)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }
}

/// Each exchange's merged addresses, by its normalized name, until they
/// expire; bounded like [`AddressCache`].
#[derive(Debug)]
pub(super) struct Exchanges<T> {
    entries: Mutex<HashMap<String, (T, Instant)>>,
}

impl<T> Default for Exchanges<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<T: Clone> Exchanges<T> {
    /// The addresses of `exchange` known at `now`, if still valid.
    pub(super) fn get(&self, exchange: &str, now: Instant) -> Option<T> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(exchange)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    /// Keep `value` for `exchange` until `expires` (nothing when that has
    /// passed: an answer not to be cached).
    pub(super) fn put(&self, exchange: &str, value: T, expires: Instant, now: Instant) {
        if expires <= now {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(exchange) {
            make_room(&mut entries, |(_, expires)| *expires <= now);
        }
        entries.insert(exchange.to_string(), (value, expires));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }
}

/// A finished lookup past its time (a lookup in flight never is).
fn expired(slot: &Slot, now: Instant) -> bool {
    slot.get().is_some_and(|c| c.expires <= now)
}

/// Room in a full map: the expired entries go, then arbitrary ones down to
/// three quarters of [`CACHE_ENTRIES`].
fn make_room<K: Clone + Eq + Hash, V>(entries: &mut HashMap<K, V>, expired: impl Fn(&V) -> bool) {
    entries.retain(|_, value| !expired(value));
    let keep = CACHE_ENTRIES * 3 / 4;
    if entries.len() > keep {
        let surplus: Vec<_> = entries.keys().take(entries.len() - keep).cloned().collect();
        for key in surplus {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mxscope_common::DnsStatus;

    use super::*;

    fn name(i: usize) -> Name {
        Name::from_ascii(format!("mx{i}.example.test.")).expect("a name")
    }

    fn ok(ttl: u64) -> (Result<Records, Failure>, Option<Duration>) {
        (Ok(Arc::from(Vec::new())), Some(Duration::from_secs(ttl)))
    }

    #[tokio::test(start_paused = true)]
    async fn one_fetch_per_name_and_ttl() {
        let cache = AddressCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            ok(60)
        };
        // Ten concurrent askers, one query.
        let one = name(1);
        let askers = (0..10).map(|_| cache.get_or_fetch(&one, RecordType::A, fetch));
        for (result, expires) in futures_util::future::join_all(askers).await {
            assert!(result.is_ok());
            assert_eq!(
                expires,
                Instant::now() + Duration::from_secs(60),
                "the TTL from the answer"
            );
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Another type is another entry; the same after its TTL is fetched again.
        let _ = cache.get_or_fetch(&name(1), RecordType::AAAA, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        let _ = cache.get_or_fetch(&name(1), RecordType::A, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_without_a_ttl_are_not_kept() {
        let cache = AddressCache::default();
        let fetches = AtomicUsize::new(0);
        for _ in 0..3 {
            let result = cache
                .get_or_fetch(&name(1), RecordType::A, || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    (Err(Failure::new(DnsStatus::Timeout)), None)
                })
                .await;
            assert_eq!(result.0, Err(Failure::new(DnsStatus::Timeout)));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = AddressCache::default();
        for i in 0..CACHE_ENTRIES + 10 {
            let _ = cache
                .get_or_fetch(&name(i), RecordType::A, || async { ok(300) })
                .await;
            assert!(cache.len() <= CACHE_ENTRIES);
        }
        assert!(cache.len() >= CACHE_ENTRIES * 3 / 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_exchange_is_known_until_its_earlier_answer_expires() {
        let exchanges: Exchanges<u32> = Exchanges::default();
        let now = Instant::now();
        exchanges.put("mx1.example", 1, now + Duration::from_secs(30), now);
        // An answer that may not be cached (no TTL: it expires at once).
        exchanges.put("mx2.example", 2, now, now);
        assert_eq!(exchanges.get("mx1.example", now), Some(1));
        assert_eq!(exchanges.get("mx2.example", now), None);
        assert_eq!(
            exchanges.get("mx1.example", now + Duration::from_secs(29)),
            Some(1)
        );
        assert_eq!(
            exchanges.get("mx1.example", now + Duration::from_secs(30)),
            None
        );
    }

    #[test]
    fn the_exchanges_are_bounded() {
        let exchanges: Exchanges<usize> = Exchanges::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for i in 0..CACHE_ENTRIES + 10 {
            exchanges.put(&format!("mx{i}.example"), i, later, now);
            assert!(exchanges.len() <= CACHE_ENTRIES);
        }
        assert!(exchanges.len() >= CACHE_ENTRIES * 3 / 4);
        let last = format!("mx{}.example", CACHE_ENTRIES + 9);
        assert_eq!(exchanges.get(&last, now), Some(CACHE_ENTRIES + 9));
    }
}
