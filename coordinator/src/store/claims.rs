//! Target claims: each (scan, vantage, IP) is planned as a probe target
//! once. In sled, with the keys known to be stored kept in memory.

use std::net::IpAddr;

use super::error::storage;
use super::keys;
use super::{Result, Store};

impl Store {
    /// Claims `ip` for (scan, vantage): true the first time only, atomically.
    pub fn claim_target(&self, scan: &str, vantage: &str, ip: IpAddr) -> Result<bool> {
        let key = keys::scan_vantage_key(scan, vantage, &keys::ip_tail(ip))?;
        let swapped = self
            .h()?
            .claims
            .compare_and_swap(key, None::<&[u8]>, Some(&[][..]))
            .map_err(storage)?;
        Ok(swapped.is_ok())
    }

    /// Whether `ip` is claimed for (scan, vantage): from the claims known
    /// in memory, else from sled.
    pub fn is_claimed(&self, scan: &str, vantage: &str, ip: IpAddr) -> Result<bool> {
        let key = keys::scan_vantage_key(scan, vantage, &keys::ip_tail(ip))?;
        if lock(&self.known_claims).keys.contains(&key) {
            return Ok(true);
        }
        let claimed = self.h()?.claims.contains_key(&key).map_err(storage)?;
        if claimed {
            lock(&self.known_claims).add([key]);
        }
        Ok(claimed)
    }

    /// Claims every one of `ips` for (scan, vantage), in one batch. The
    /// caller serialises planning: this does not check for earlier claims.
    pub fn put_claims(&self, scan: &str, vantage: &str, ips: &[IpAddr]) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut claimed = Vec::with_capacity(ips.len());
        for ip in ips {
            let key = keys::scan_vantage_key(scan, vantage, &keys::ip_tail(*ip))?;
            batch.insert(key.as_slice(), &[][..]);
            claimed.push(key);
        }
        self.h()?.claims.apply_batch(batch).map_err(storage)?;
        lock(&self.known_claims).add(claimed);
        Ok(())
    }

    /// Forgets every claim of a scan (it is over: no more targets are
    /// planned for it); returns how many were removed.
    pub fn prune_claims(&self, scan: &str) -> Result<u64> {
        let prefix = keys::scan_prefix(scan)?;
        forget_claims(&self.known_claims, &prefix);
        let mut removed = 0u64;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for key in self
                .h()?
                .claims
                .scan_prefix(&prefix)
                .keys()
                .take(CLAIM_BATCH)
            {
                batch.remove(key.map_err(storage)?);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.h()?.claims.apply_batch(batch).map_err(storage)?;
            removed += n;
        }
    }

    /// Claims stored for a scan (every vantage).
    pub fn count_claims(&self, scan: &str) -> Result<u64> {
        let prefix = keys::scan_prefix(scan)?;
        let mut n = 0;
        for key in self.h()?.claims.scan_prefix(prefix).keys() {
            key.map_err(storage)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Claims removed per batch by [`Store::prune_claims`].
const CLAIM_BATCH: usize = 4_096;

/// Claim keys known to be in sled: planning asks for every IP of every
/// resolved batch, and at national scale the same few thousand MX IPs
/// again and again (a sled read each was about 2 % of a national scan's
/// CPU). Only what is known to be claimed is kept, at most
/// [`KNOWN_CLAIMS`] keys (then it starts afresh); a scan's claims are
/// forgotten with it, and all of them when sled is reopened.
#[derive(Debug, Default)]
pub(super) struct KnownClaims {
    keys: std::collections::HashSet<Vec<u8>>,
}

/// Most claim keys known in memory (about 20 MiB).
const KNOWN_CLAIMS: usize = 1 << 18;

impl KnownClaims {
    fn add(&mut self, keys: impl IntoIterator<Item = Vec<u8>>) {
        for key in keys {
            if self.keys.len() >= KNOWN_CLAIMS {
                self.keys.clear();
            }
            self.keys.insert(key);
        }
    }
}

/// Forget the known claims whose keys start with `prefix` (all, for an
/// empty one).
pub(super) fn forget_claims(known: &std::sync::Mutex<KnownClaims>, prefix: &[u8]) {
    lock(known).keys.retain(|key| !key.starts_with(prefix));
}

fn lock(known: &std::sync::Mutex<KnownClaims>) -> std::sync::MutexGuard<'_, KnownClaims> {
    known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
