//! Domain records in pages (format 3): the records of one (scan, vantage)
//! are cut into pages of consecutive domains, each page one sled value under
//! the key `scan 0 vantage 0 first-domain`. A batch of records (a task's:
//! consecutive domains of the sorted list) rewrites the page or two it falls
//! in, instead of one sled key per record — sled's own cost per key, about
//! 10 µs, was half the time of a national scan (docs/benchmarks.md).
//!
//! A page is a sequence of entries sorted by domain, each domain once:
//! `u32 BE length, domain, u32 BE length, record JSON`. The pages of one
//! (scan, vantage) cover disjoint ranges: a page holds the domains from its
//! key up to the next page's key.

use std::ops::Bound;

use super::error::{started, storage};
use super::{Result, StoreError};

/// A page holding more records than this is split.
pub(super) const PAGE_RECORDS: usize = 64;
/// A page holding more bytes than this is split (a page of one record may
/// be larger). Measured at 1M domains (docs/benchmarks.md): pages of 128
/// records / 64 KiB took the same time and 40 % more memory (sled caches
/// whole pages); 32 / 8 KiB the same time and 6 % less.
pub(super) const PAGE_BYTES: usize = 16 * 1024;

/// One page: (domain, record JSON), sorted by domain, each domain once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Page {
    pub(super) entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Page {
    /// Read a stored page; `key` names it in the error.
    pub(super) fn decode(key: &[u8], mut bytes: &[u8]) -> Result<Self> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "domain record page at key {:?}: truncated or not a page",
                String::from_utf8_lossy(key)
            ))
        };
        let take = |bytes: &mut &[u8]| -> Result<Vec<u8>> {
            let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(*len) as usize;
            if rest.len() < len {
                return Err(corrupt());
            }
            let (value, rest) = rest.split_at(len);
            *bytes = rest;
            Ok(value.to_vec())
        };
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        while !bytes.is_empty() {
            let domain = take(&mut bytes)?;
            let json = take(&mut bytes)?;
            if entries.last().is_some_and(|(last, _)| *last >= domain) {
                return Err(StoreError::Corrupt(format!(
                    "domain record page at key {:?}: domains out of order",
                    String::from_utf8_lossy(key)
                )));
            }
            entries.push((domain, json));
        }
        Ok(Self { entries })
    }

    pub(super) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.bytes());
        for (domain, json) in &self.entries {
            for part in [domain, json] {
                let len = u32::try_from(part.len()).map_err(|_| {
                    StoreError::Invalid(format!("a record of {} bytes", part.len()))
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        Ok(out)
    }

    /// The length of the (scan, vantage) prefix of `key`, the key this
    /// page is stored under: the prefix (ending in NUL) and the page's first
    /// domain. Anything else — an empty page, a key that does not end with
    /// its first domain — is a corrupt page.
    pub(super) fn prefix_len(&self, key: &[u8]) -> Result<usize> {
        let first = self.entries.first().map(|(d, _)| d.as_slice());
        match first {
            Some(first)
                if key.len() > first.len()
                    && key.ends_with(first)
                    && key[key.len() - first.len() - 1] == 0 =>
            {
                Ok(key.len() - first.len())
            }
            _ => Err(StoreError::Corrupt(format!(
                "domain record page at key {:?}: its key is not its first domain",
                String::from_utf8_lossy(key)
            ))),
        }
    }

    /// Encoded size.
    fn bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(d, j)| 8 + d.len() + j.len())
            .sum()
    }

    /// Insert `domain` unless the page has it; true if it was new.
    pub(super) fn insert(&mut self, domain: &[u8], json: &[u8]) -> bool {
        match self
            .entries
            .binary_search_by(|(d, _)| d.as_slice().cmp(domain))
        {
            Ok(_) => false,
            Err(at) => {
                self.entries.insert(at, (domain.to_vec(), json.to_vec()));
                true
            }
        }
    }

    /// The page as it is stored: itself, or cut in pages half full when it
    /// outgrew [`PAGE_RECORDS`] or [`PAGE_BYTES`] (room for the records a
    /// later batch puts between them); none when it is empty. Every part
    /// holds at least one entry.
    pub(super) fn split(self) -> Vec<Self> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        if self.entries.len() <= PAGE_RECORDS && self.bytes() <= PAGE_BYTES {
            return vec![self];
        }
        let mut pages = Vec::new();
        let mut page = Self::default();
        let mut bytes = 0;
        for entry in self.entries {
            let size = 8 + entry.0.len() + entry.1.len();
            if !page.entries.is_empty()
                && (page.entries.len() >= PAGE_RECORDS / 2 || bytes + size > PAGE_BYTES / 2)
            {
                pages.push(std::mem::take(&mut page));
                bytes = 0;
            }
            bytes += size;
            page.entries.push(entry);
        }
        if !page.entries.is_empty() {
            pages.push(page);
        }
        pages
    }
}

/// A page read for a batch: where it was, what it holds now, and the key
/// of the next page (its range ends there).
#[derive(Debug)]
pub(super) struct Touched {
    /// Its key in the tree; `None` for a page made by this batch.
    pub(super) stored_at: Option<Vec<u8>>,
    pub(super) page: Page,
    upper: Option<Vec<u8>>,
    pub(super) changed: bool,
}

impl Touched {
    /// Whether `key` (at or above the key it was loaded for) falls in this
    /// page's range.
    pub(super) fn covers(&self, key: &[u8]) -> bool {
        self.upper.as_deref().is_none_or(|upper| key < upper)
    }

    /// The page `domain` goes in: this one, or, when this is a stored page,
    /// `domain` comes after all it holds and the batch has half a page or
    /// more from `domain` on (`batch_left` records), a new page that starts
    /// at `domain` and ends where this one did. A list's records arrive task
    /// by task, each task's domains after the pages written before it: they
    /// then make pages of their own, and no stored page is written again.
    /// Small batches still fill the page before them.
    pub(super) fn or_next(self, domain: &[u8], batch_left: usize) -> Self {
        let appends = batch_left >= PAGE_RECORDS / 2
            && self.stored_at.is_some()
            && self
                .page
                .entries
                .last()
                .is_some_and(|(last, _)| domain > last.as_slice());
        if !appends {
            return self;
        }
        Self {
            stored_at: None,
            page: Page::default(),
            upper: self.upper,
            changed: false,
        }
    }
}

/// The page of `tree` that `key` (`prefix` + a domain) belongs in: the
/// last page at or below it; else, when `key` is below every page of the
/// prefix, a new page ending where the first one begins. A stored page
/// never changes its key (its first domain): a reader streaming the pages
/// while a batch is written never skips a page that was already there.
pub(super) fn page_for(tree: &sled::Tree, prefix: &[u8], key: &[u8]) -> Result<Touched> {
    let below = tree
        .range::<&[u8], _>((Bound::Included(prefix), Bound::Included(key)))
        .next_back()
        .transpose()
        .map_err(storage)?;
    let Some((at, value)) = below else {
        return Ok(Touched {
            stored_at: None,
            page: Page::default(),
            upper: first_after(tree, prefix, Bound::Excluded(key))?.map(|(k, _)| k.to_vec()),
            changed: false,
        });
    };
    let page = Page::decode(&at, &value)?;
    page.prefix_len(&at)?;
    Ok(Touched {
        page,
        upper: first_after(tree, prefix, Bound::Excluded(&at))?.map(|(k, _)| k.to_vec()),
        stored_at: Some(at.to_vec()),
        changed: false,
    })
}

/// The first entry of `tree` after `from` that starts with `prefix`.
fn first_after(
    tree: &sled::Tree,
    prefix: &[u8],
    from: Bound<&[u8]>,
) -> Result<Option<(sled::IVec, sled::IVec)>> {
    let next = tree
        .range::<&[u8], _>((from, Bound::Unbounded))
        .next()
        .transpose()
        .map_err(storage)?;
    Ok(next.filter(|(k, _)| k.starts_with(prefix)))
}

/// Streams the entries of the pages of a sled iterator, each read by
/// `read` (decoded, or as its text); one page in memory at a time. An
/// invalid prefix or a corrupt page yields its error once, then the end.
///
/// Each record comes once, in key order, also while batches are written:
/// a page split after it was read shows its upper half again as a new
/// page, whose records at or below the last key yielded are skipped.
pub(super) struct Paged<T> {
    what: &'static str,
    iter: Option<sled::Iter>,
    error: Option<StoreError>,
    page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    /// The (scan, vantage) prefix of the current page's keys.
    prefix: Vec<u8>,
    /// The full key of the last record yielded.
    last: Vec<u8>,
    read: fn(&str, &[u8], &[u8]) -> Result<T>,
}

impl<T> Paged<T> {
    pub(super) fn new(
        what: &'static str,
        iter: Result<sled::Iter>,
        read: fn(&str, &[u8], &[u8]) -> Result<T>,
    ) -> Self {
        let (iter, error) = started(iter);
        Self {
            what,
            iter,
            error,
            page: Vec::new().into_iter(),
            prefix: Vec::new(),
            last: Vec::new(),
            read,
        }
    }
}

impl<T> Iterator for Paged<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(err) = self.error.take() {
                self.iter = None;
                return Some(Err(err));
            }
            if let Some((domain, json)) = self.page.next() {
                let mut key = self.prefix.clone();
                key.extend_from_slice(&domain);
                if key <= self.last {
                    continue;
                }
                let read = (self.read)(self.what, &key, &json);
                self.last = key;
                return Some(read);
            }
            match self.iter.as_mut()?.next()? {
                Ok((key, value)) => {
                    let page = Page::decode(&key, &value)
                        .and_then(|page| Ok((page.prefix_len(&key)?, page)));
                    match page {
                        Ok((prefix, page)) => {
                            self.prefix = key[..prefix].to_vec();
                            self.page = page.entries.into_iter();
                        }
                        Err(err) => self.error = Some(err),
                    }
                }
                Err(err) => self.error = Some(storage(err)),
            }
        }
    }
}

/// Split a `domains` key of format 2 (`scan 0 vantage 0 domain`) into its
/// (scan, vantage) prefix and the domain.
pub(super) fn split_key(key: &[u8]) -> Result<(&[u8], &[u8])> {
    let mut nuls = key.iter().enumerate().filter(|(_, b)| **b == 0);
    match (nuls.next(), nuls.next()) {
        (Some(_), Some((at, _))) => Ok(key.split_at(at + 1)),
        _ => Err(StoreError::Corrupt(format!(
            "domain record key {:?}: not scan, vantage and domain",
            String::from_utf8_lossy(key)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(domains: &[&str]) -> Page {
        let mut page = Page::default();
        for d in domains {
            page.insert(d.as_bytes(), format!("{{\"domain\":\"{d}\"}}").as_bytes());
        }
        page
    }

    #[test]
    fn a_page_keeps_its_domains_sorted_and_once_and_reads_back() {
        let mut p = page(&["b.it", "a.it", "c.it"]);
        assert!(!p.insert(b"b.it", b"{}"), "a domain it holds is not new");
        let order: Vec<&[u8]> = p.entries.iter().map(|(d, _)| d.as_slice()).collect();
        assert_eq!(order, [&b"a.it"[..], b"b.it", b"c.it"]);
        assert_eq!(
            p.entries[1].1, br#"{"domain":"b.it"}"#,
            "the first text stays"
        );
        assert_eq!(Page::decode(b"k", &p.encode().unwrap()).unwrap(), p);
        assert_eq!(Page::decode(b"k", b"").unwrap(), Page::default());
    }

    #[test]
    fn damaged_pages_are_corrupt_not_panics() {
        let good = page(&["a.it", "b.it"]).encode().unwrap();
        let one = page(&["a.it"]).encode().unwrap().len();
        for cut in (1..good.len()).filter(|&cut| cut != one) {
            assert!(
                matches!(
                    Page::decode(b"k", &good[..cut]),
                    Err(StoreError::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
        let unsorted = Page {
            entries: vec![
                (b"b".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"2".to_vec()),
            ],
        };
        assert!(Page::decode(b"k", &unsorted.encode().unwrap()).is_err());
        // A page whose key is not its first domain.
        let p = page(&["bb.it"]);
        assert!(p.prefix_len(b"s1\0A\0b.it").is_err());
        assert!(p.prefix_len(b"s1\0A\0xbb.it").is_err());
        assert_eq!(p.prefix_len(b"s1\0A\0bb.it").unwrap(), 5);
        assert!(Page::default().prefix_len(b"s1\0A\0").is_err());
        assert!(Page::decode(b"k", &[0xff, 0xff, 0xff, 0xff, 1]).is_err());
    }

    #[test]
    fn a_full_page_is_cut_in_half_full_pages_in_order() {
        let names: Vec<String> = (0..PAGE_RECORDS + 1)
            .map(|i| format!("d{i:04}.it"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let full = page(&refs);
        let pages = full.clone().split();
        assert_eq!(pages.len(), 3);
        assert!(pages.iter().all(|p| p.entries.len() <= PAGE_RECORDS / 2));
        let joined: Vec<_> = pages.into_iter().flat_map(|p| p.entries).collect();
        assert_eq!(joined, full.entries);
        assert!(Page::default().split().is_empty());
        let small = page(&["a.it"]);
        assert_eq!(small.clone().split(), vec![small]);
        // One record larger than a page stays whole, alone.
        let mut big = page(&["a.it", "b.it"]);
        big.insert(b"c.it", &vec![b'x'; PAGE_BYTES]);
        let pages = big.split();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1].entries.len(), 1);
    }

    #[test]
    fn format_2_keys_split_into_prefix_and_domain() {
        assert_eq!(
            split_key(b"s1\0A\0a.it").unwrap(),
            (&b"s1\0A\0"[..], &b"a.it"[..])
        );
        assert!(split_key(b"s1\0a.it").is_err());
    }
}
