//! Results (idempotent, counted) and their streams.

use std::borrow::Cow;

use mxscope_common::record::{Delivered, DomainRecord, TargetRecord};
use mxscope_common::tally::VantageTally;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::error::{decode, encode, started, storage};
use super::keys::{self, Counter};
use super::pages::{self, Paged, Touched};
use super::{Result, Store, StoreError};

/// What a batch writes: records under keys of their own, stored unless the
/// key exists (targets); or the pages its new records went into (domains).
#[derive(Clone, Copy)]
enum Writes<'a> {
    Keys(&'a [(Vec<u8>, Cow<'a, [u8]>)]),
    Pages(&'a [(Vec<u8>, Vec<u8>)]),
}

/// A vantage's tally key, the records of a batch in order, and how one
/// record counts.
type TallyOf<'a, R> = (&'a [u8], Vec<&'a R>, fn(&mut VantageTally, &R));

/// A record as the store takes it: the record (its key, its tally) and the
/// JSON stored for it — encoded here for a record made here, the text
/// received for a [`Delivered`] one (never decoded and encoded again).
pub trait Storable<R> {
    fn record(&self) -> &R;
    fn json(&self) -> Result<Cow<'_, [u8]>>;
}

impl<R: serde::Serialize> Storable<R> for R {
    fn record(&self) -> &R {
        self
    }
    fn json(&self) -> Result<Cow<'_, [u8]>> {
        encode("record", self).map(Cow::Owned)
    }
}

impl<R> Storable<R> for Delivered<R> {
    fn record(&self) -> &R {
        &self.record
    }
    fn json(&self) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.json.as_bytes()))
    }
}

impl Store {
    // ---- results ----

    /// Stores a domain record under (scan, vantage, domain) unless the key
    /// exists. True if the key was new; a resend returns false and leaves
    /// the first record in place.
    pub fn put_domain_record(
        &self,
        scan: &str,
        vantage: &str,
        record: &DomainRecord,
    ) -> Result<bool> {
        Ok(self.put_domain_records(scan, vantage, std::slice::from_ref(record))? == 1)
    }

    /// [`Self::put_domain_record`] for a batch, in one transaction; returns
    /// how many keys were new.
    pub fn put_domain_records<S: Storable<DomainRecord>>(
        &self,
        scan: &str,
        vantage: &str,
        records: &[S],
    ) -> Result<u64> {
        if !self.paged {
            return Err(StoreError::Invalid(
                "this store was opened to read a directory of an older format: it takes no records"
                    .into(),
            ));
        }
        let prefix = keys::scan_vantage_key(scan, vantage, b"")?;
        let texts = records
            .iter()
            .map(|r| r.json())
            .collect::<Result<Vec<_>>>()?;
        // Sorted by domain, each once: the first of a batch's duplicates is
        // the one kept, as a key already stored keeps its first record.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| records[a].record().domain.cmp(&records[b].record().domain));
        order.dedup_by(|a, b| records[*a].record().domain == records[*b].record().domain);
        let tally = keys::tally_key(scan, vantage)?;
        // One writer of pages at a time: a batch reads its pages, then
        // writes them in a transaction that holds no range reads.
        let _writer = self
            .page_writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = self.h()?;
        let mut changed: Vec<Touched> = Vec::new();
        let mut current: Option<Touched> = None;
        let mut new = Vec::new();
        let mut key = prefix.clone();
        let batch = order.len();
        for (n, i) in order.into_iter().enumerate() {
            let domain = records[i].record().domain.as_bytes();
            key.truncate(prefix.len());
            key.extend_from_slice(domain);
            let page = match current.take() {
                Some(page) if page.covers(&key) => page,
                passed => {
                    // Only the pages a record went into are kept.
                    changed.extend(passed.filter(|p| p.changed));
                    pages::page_for(&h.domain_pages, &prefix, &key)?.or_next(domain, batch - n)
                }
            };
            let page = current.insert(page);
            if page.page.insert(domain, &texts[i]) {
                page.changed = true;
                new.push(i);
            }
        }
        changed.extend(current.filter(|p| p.changed));
        if new.is_empty() {
            return Ok(0);
        }
        let mut inserts = Vec::new();
        for t in changed {
            for page in t.page.split() {
                let mut at = prefix.clone();
                at.extend_from_slice(&page.entries[0].0);
                inserts.push((at, page.encode()?));
            }
            // A stored page keeps its key (its first domain): the first of
            // its parts overwrites it, nothing is left behind to remove.
            debug_assert!(t
                .stored_at
                .as_ref()
                .is_none_or(|at| inserts.iter().any(|(key, _)| key == at)));
        }
        // Tallied in the order the records came (the last usable resolver
        // check of a batch is the one a tally keeps).
        new.sort_unstable();
        let new = new.into_iter().map(|i| records[i].record()).collect();
        self.insert_new(
            &h.domain_pages,
            Counter::Domains,
            scan,
            Writes::Pages(&inserts),
            (&tally, new, |sum, r| sum.add_domain(r)),
        )
    }

    /// Stores a target record under (scan, vantage, ip) unless the key
    /// exists. True if the key was new.
    pub fn put_target_record(
        &self,
        scan: &str,
        vantage: &str,
        record: &TargetRecord,
    ) -> Result<bool> {
        Ok(self.put_target_records(scan, vantage, std::slice::from_ref(record))? == 1)
    }

    /// [`Self::put_target_record`] for a batch, in one transaction; returns
    /// how many keys were new.
    pub fn put_target_records<S: Storable<TargetRecord>>(
        &self,
        scan: &str,
        vantage: &str,
        records: &[S],
    ) -> Result<u64> {
        let items = records
            .iter()
            .map(|r| {
                let key = keys::scan_vantage_key(scan, vantage, &keys::ip_tail(r.record().ip))?;
                Ok((key, r.json()?))
            })
            .collect::<Result<Vec<_>>>()?;
        let tally = keys::tally_key(scan, vantage)?;
        let h = self.h()?;
        self.insert_new(
            &h.targets,
            Counter::Targets,
            scan,
            Writes::Keys(&items),
            (&tally, records.iter().map(S::record).collect(), |sum, r| {
                sum.add_target(r)
            }),
        )
    }

    /// The tally of each vantage of a scan that has records.
    pub fn tallies(&self, scan: &str) -> Result<Vec<(String, VantageTally)>> {
        let prefix = keys::tally_key(scan, "")?;
        let mut tallies = Vec::new();
        for item in self.h()?.counters.scan_prefix(&prefix) {
            let (key, value) = item.map_err(storage)?;
            let vantage = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            tallies.push((vantage, decode("vantage tally", &key, &value)?));
        }
        Ok(tallies)
    }

    /// Writes a batch's new records, adds their number to the scan's counter
    /// and their share to the vantage's tally (`tally`: its key, the new
    /// records — all of `Keys`, those not stored yet being counted —, how
    /// one record counts), in one transaction.
    fn insert_new<R>(
        &self,
        tree: &sled::Tree,
        counter: Counter,
        scan: &str,
        writes: Writes<'_>,
        tally: TallyOf<'_, R>,
    ) -> Result<u64> {
        keys::check_id("scan id", scan)?;
        let counter_key = keys::counter_key(counter, scan);
        let (tally_key, records, count) = tally;
        let h = self.h()?;
        let outcome = (tree, &h.counters).transaction(|(tree, counters)| {
            let mut new = 0u64;
            let mut sum = match counters.get(tally_key)? {
                Some(bytes) => decode("vantage tally", tally_key, &bytes)
                    .map_err(ConflictableTransactionError::Abort)?,
                None => VantageTally::default(),
            };
            match writes {
                Writes::Keys(items) => {
                    for ((key, value), record) in items.iter().zip(&records) {
                        if tree.get(key)?.is_none() {
                            tree.insert(key.as_slice(), value.as_ref())?;
                            count(&mut sum, record);
                            new += 1;
                        }
                    }
                }
                Writes::Pages(inserts) => {
                    for (key, page) in inserts {
                        tree.insert(key.as_slice(), page.as_slice())?;
                    }
                    for record in &records {
                        count(&mut sum, record);
                    }
                    new = records.len() as u64;
                }
            }
            if new > 0 {
                let bytes =
                    encode("vantage tally", &sum).map_err(ConflictableTransactionError::Abort)?;
                counters.insert(tally_key, bytes)?;
                let old = match counters.get(&counter_key)? {
                    Some(bytes) => keys::decode_u64("record counter", &bytes)
                        .map_err(ConflictableTransactionError::Abort)?,
                    None => 0,
                };
                counters.insert(counter_key.as_slice(), &(old + new).to_be_bytes())?;
            }
            Ok(new)
        });
        match outcome {
            Ok(new) => Ok(new),
            Err(TransactionError::Abort(err)) => Err(err),
            Err(TransactionError::Storage(err)) => Err(storage(err)),
        }
    }

    /// A scan's domain records, streamed, by (vantage, domain).
    pub fn domain_records(&self, scan: &str) -> impl Iterator<Item = Result<DomainRecord>> + '_ {
        self.domains_under("domain record", keys::scan_prefix(scan), decode)
    }

    /// One vantage's domain records of a scan, streamed, by domain (the
    /// streams that the vantages report merge-joins).
    pub fn domain_records_of(
        &self,
        scan: &str,
        vantage: &str,
    ) -> impl Iterator<Item = Result<DomainRecord>> + '_ {
        let prefix = keys::scan_vantage_key(scan, vantage, b"");
        self.domains_under("domain record", prefix, decode)
    }

    /// Where to cut one vantage's domain records into two runs, near
    /// `domain` (the first domain of the middle resolve task cuts them in
    /// halves): the key of the page that holds it; `None` when that is the
    /// first page (nothing before it) or a reader of an older directory.
    pub fn domain_records_cut(
        &self,
        scan: &str,
        vantage: &str,
        domain: &str,
    ) -> Result<Option<Vec<u8>>> {
        if !self.paged {
            return Ok(None);
        }
        let prefix = keys::scan_vantage_key(scan, vantage, b"")?;
        let h = self.h()?;
        let first = h.domain_pages.scan_prefix(&prefix).keys().next();
        let first = first.transpose().map_err(storage)?;
        let near = [&prefix[..], domain.as_bytes()].concat();
        let at = pages::page_for(&h.domain_pages, &prefix, &near)?.stored_at;
        Ok(at.filter(|at| first.is_some_and(|first| at.as_slice() > &first[..])))
    }

    /// One vantage's domain records from the page at `from` (or the first)
    /// up to the page at `to` (or the last), `to` excluded: a run cut by
    /// [`Self::domain_records_cut`]. Together the runs are
    /// [`Self::domain_records_of`].
    pub fn domain_records_between(
        &self,
        scan: &str,
        vantage: &str,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<DomainRecord>> + '_ {
        let iter = keys::scan_vantage_key(scan, vantage, b"").and_then(|prefix| {
            // Every key of the prefix (`scan 0 vantage 0 …`) sorts below
            // the prefix with its last byte raised.
            let mut after = prefix.clone();
            if let Some(last) = after.last_mut() {
                *last += 1;
            }
            let start = from.map_or(prefix, <[u8]>::to_vec);
            let end = to.map_or(after, <[u8]>::to_vec);
            Ok(self.h()?.domain_pages.range(start..end))
        });
        Paged::new("domain record", iter, decode::<DomainRecord>)
    }

    /// The domain records under a key prefix, each read by `read`: from the
    /// pages, or — a reader of a format 2 directory — one key each.
    fn domains_under<T: 'static>(
        &self,
        what: &'static str,
        prefix: Result<Vec<u8>>,
        read: fn(&str, &[u8], &[u8]) -> Result<T>,
    ) -> Box<dyn Iterator<Item = Result<T>> + '_> {
        if self.paged {
            let iter = prefix.and_then(|p| Ok(self.h()?.domain_pages.scan_prefix(p)));
            Box::new(Paged::new(what, iter, read))
        } else {
            let iter = prefix.and_then(|p| Ok(self.h()?.domains.scan_prefix(p)));
            Box::new(Decoded::reading(what, iter, read))
        }
    }

    /// A scan's target records, streamed, by (vantage, ip; IPv4 first).
    pub fn target_records(&self, scan: &str) -> impl Iterator<Item = Result<TargetRecord>> + '_ {
        let iter = keys::scan_prefix(scan).and_then(|p| Ok(self.h()?.targets.scan_prefix(p)));
        Decoded::new("target record", iter)
    }

    /// The stored JSON of a scan's domain records (of one vantage, or of
    /// all), as the worker sent them: streamed out without being decoded.
    pub fn domain_texts(
        &self,
        scan: &str,
        vantage: Option<&str>,
    ) -> impl Iterator<Item = Result<String>> + '_ {
        let prefix = match vantage {
            Some(v) => keys::scan_vantage_key(scan, v, b""),
            None => keys::scan_prefix(scan),
        };
        self.domains_under("domain record", prefix, text)
    }

    /// The stored JSON of a scan's target records (see [`Self::domain_texts`]).
    pub fn target_texts(&self, scan: &str) -> impl Iterator<Item = Result<String>> + '_ {
        let prefix = keys::scan_prefix(scan);
        Decoded::texts(
            "target record",
            prefix.and_then(|p| Ok(self.h()?.targets.scan_prefix(p))),
        )
    }

    /// Distinct (vantage, domain) keys stored for a scan (a counter read).
    pub fn count_domain_records(&self, scan: &str) -> Result<u64> {
        self.count(Counter::Domains, scan)
    }

    /// Distinct (vantage, ip) keys stored for a scan (a counter read).
    pub fn count_target_records(&self, scan: &str) -> Result<u64> {
        self.count(Counter::Targets, scan)
    }

    fn count(&self, counter: Counter, scan: &str) -> Result<u64> {
        match self
            .h()?
            .counters
            .get(keys::counter_key(counter, scan))
            .map_err(storage)?
        {
            Some(bytes) => keys::decode_u64("record counter", &bytes),
            None => Ok(0),
        }
    }
}

/// Reads the values of a sled iterator (decoded records, or their text);
/// an invalid prefix yields its error once.
pub(super) struct Decoded<T> {
    what: &'static str,
    iter: Option<sled::Iter>,
    error: Option<StoreError>,
    read: fn(&str, &[u8], &[u8]) -> Result<T>,
}

impl<T: DeserializeOwned> Decoded<T> {
    /// Each value decoded from its JSON.
    pub(super) fn new(what: &'static str, iter: Result<sled::Iter>) -> Self {
        Self::reading(what, iter, decode)
    }
}

impl Decoded<String> {
    /// Each value as its JSON text, not decoded.
    fn texts(what: &'static str, iter: Result<sled::Iter>) -> Self {
        Self::reading(what, iter, text)
    }
}

/// A stored record as its JSON text, not decoded (checked to be UTF-8; it
/// was checked to be a record when it was stored).
fn text(what: &str, key: &[u8], value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|_| {
        StoreError::Corrupt(format!(
            "{what} at key {:?}: not UTF-8",
            String::from_utf8_lossy(key)
        ))
    })
}

impl<T> Decoded<T> {
    pub(super) fn reading(
        what: &'static str,
        iter: Result<sled::Iter>,
        read: fn(&str, &[u8], &[u8]) -> Result<T>,
    ) -> Self {
        let (iter, error) = started(iter);
        Self {
            what,
            iter,
            error,
            read,
        }
    }
}

impl<T> Iterator for Decoded<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.error.take() {
            return Some(Err(err));
        }
        let next = self.iter.as_mut()?.next()?;
        Some(match next {
            Ok((key, value)) => (self.read)(self.what, &key, &value),
            Err(err) => Err(storage(err)),
        })
    }
}
