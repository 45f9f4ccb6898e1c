//! The headline's coverage (domains covered, all MX, primary MX STARTTLS),
//! counted by one rule for the full report's second pass
//! ([`super::Evaluated::add_domain`]) and for the headline alone, from what
//! its first pass noted of each domain ([`CoverageMemo`]).

use std::collections::HashMap;

use mxscope_common::{Bucket, DnsStatus, DomainRecord};

use super::super::distributions::HostStatus;
use super::super::Headline;
use super::Evaluated;

impl Evaluated {
    /// The second pass of the headline alone, from `memo` (which must be
    /// [`CoverageMemo::complete`]): the coverage numbers [`Self::add_domain`]
    /// would count over the same records. Rows, security counts and
    /// findings of the domains are left out.
    pub fn count_coverage(&mut self, memo: &CoverageMemo) {
        let Some(v) = self.vantages.get_mut(&memo.vantage) else {
            return;
        };
        let status: Vec<HostStatus> = memo
            .names
            .iter()
            .map(|name| v.hosts.get(name).copied().unwrap_or(HostStatus::NotProbed))
            .collect();
        let mut rest = memo.entries.as_slice();
        while let Some((&count, after)) = rest.split_first() {
            let (mx, next) = after.split_at((2 * count as usize).min(after.len()));
            let mx = mx.chunks_exact(2).map(|pair| {
                let preference = u16::try_from(pair[0]).unwrap_or(u16::MAX);
                let host = status
                    .get(pair[1] as usize)
                    .copied()
                    .unwrap_or(HostStatus::NotProbed);
                (preference, host)
            });
            count_coverage(&mut v.headline, mx);
            rest = next;
        }
    }
}

/// Whether a domain is covered (one STARTTLS MX) and whether one of its
/// primary (lowest preference) MX is STARTTLS.
pub(super) struct Coverage {
    pub(super) covered: bool,
    pub(super) primary: bool,
}

/// Count one answered domain with MX, given each MX's (preference, host
/// status), into `headline`'s covered, all-MX and primary-MX numbers.
pub(super) fn count_coverage(
    headline: &mut Headline,
    mx: impl Iterator<Item = (u16, HostStatus)> + Clone,
) -> Coverage {
    let starttls = |status: HostStatus| status.bucket() == Bucket::SupportsStarttls;
    let covered = mx.clone().any(|(_, s)| starttls(s));
    let all = mx.clone().all(|(_, s)| starttls(s));
    let primary = mx
        .clone()
        .map(|(p, _)| p)
        .min()
        .is_some_and(|least| mx.filter(|(p, _)| *p == least).any(|(_, s)| starttls(s)));
    headline.domains_covered += u64::from(covered);
    headline.domains_all_mx_starttls += u64::from(all);
    headline.domains_primary_mx_starttls += u64::from(primary);
    Coverage { covered, primary }
}

/// Most bytes a [`CoverageMemo`] holds (about 13 bytes a domain with one
/// MX: some 5 million domains); past it, the second pass reads the
/// records again and memory stays bounded by hosts, not domains.
pub const MEMO_BYTES: usize = 64 << 20;

/// The first pass's note of what the headline's second pass needs: for
/// each answered domain with MX of one vantage, its MX (preference, host).
#[derive(Debug)]
pub struct CoverageMemo {
    vantage: String,
    limit: usize,
    /// Host names by id.
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Per domain: its MX count, then (preference, host id) per MX.
    entries: Vec<u32>,
    /// About what `ids` and `names` hold.
    name_bytes: usize,
    /// Past the limit: nothing kept, the records must be read again.
    over: bool,
}

impl CoverageMemo {
    /// A memo of `vantage`'s domains, within `limit` bytes.
    pub fn new(vantage: &str, limit: usize) -> Self {
        Self {
            vantage: vantage.to_string(),
            limit,
            ids: HashMap::new(),
            names: Vec::new(),
            entries: Vec::new(),
            name_bytes: 0,
            over: false,
        }
    }

    /// Note a domain record of the first pass.
    pub fn add(&mut self, record: &DomainRecord) {
        let dns = &record.dns;
        if self.over
            || record.vantage.as_deref().is_some_and(|v| v != self.vantage)
            || dns.status != DnsStatus::Ok
            || dns.null_mx
            || dns.mx.is_empty()
        {
            return;
        }
        self.entries
            .push(u32::try_from(dns.mx.len()).unwrap_or(u32::MAX));
        for mx in &dns.mx {
            let id = match self.ids.get(mx.exchange.as_str()) {
                Some(id) => *id,
                None => self.intern(mx.exchange.clone()),
            };
            self.entries.extend([u32::from(mx.preference), id]);
        }
        self.give_up_past_the_limit();
    }

    /// Past the limit: keep nothing, the records are read again.
    fn give_up_past_the_limit(&mut self) {
        if self.over || self.entries.len() * 4 + self.name_bytes > self.limit {
            *self = Self {
                over: true,
                ..Self::new(&self.vantage, self.limit)
            };
        }
    }

    /// Take in the memo of the domains that follow this one's (a later run
    /// of the same stream).
    pub fn merge_later(&mut self, later: Self) {
        self.over |= later.over;
        self.give_up_past_the_limit();
        if self.over {
            return;
        }
        let ids: Vec<u32> = later
            .names
            .into_iter()
            .map(|name| self.intern(name))
            .collect();
        let mut rest = later.entries.as_slice();
        while let Some((&count, after)) = rest.split_first() {
            let (mx, next) = after.split_at((2 * count as usize).min(after.len()));
            self.entries.push(count);
            for pair in mx.chunks_exact(2) {
                let id = ids.get(pair[1] as usize).copied().unwrap_or(u32::MAX);
                self.entries.extend([pair[0], id]);
            }
            rest = next;
        }
        self.give_up_past_the_limit();
    }

    /// The id of host `name`, new ones numbered in turn.
    fn intern(&mut self, name: String) -> u32 {
        if let Some(id) = self.ids.get(name.as_str()) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.name_bytes += 2 * name.len() + 64;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }

    /// Whether every domain was kept (else read the records again).
    pub fn complete(&self) -> bool {
        !self.over
    }
}
