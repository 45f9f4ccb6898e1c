//! Exclusions in the coordinator (DESIGN §8): the list given to `mxscope
//! serve --exclude` (every scan, reloadable) joined with each scan's own
//! list. An excluded domain is recorded without ever being resolved; an
//! excluded target is recorded `skipped` (`excluded`) without ever being put
//! in a probe task; and the joined list travels with every lease, so
//! workers refuse what was excluded after the work was planned.

use std::sync::{Arc, RwLock};

use mxscope_common::politeness::exclusions::Exclusions;
use mxscope_common::politeness::{excluded_domain, excluded_target};
use mxscope_common::{DomainRecord, TargetRecord};

use crate::model::{ScanOptions, Target};

/// The coordinator's own list, swapped whole on reload.
#[derive(Debug, Default)]
pub struct ExclusionSet {
    global: RwLock<Arc<Exclusions>>,
}

impl ExclusionSet {
    pub fn new(global: Exclusions) -> Self {
        Self {
            global: RwLock::new(Arc::new(global)),
        }
    }

    /// The coordinator's list now.
    pub fn global(&self) -> Arc<Exclusions> {
        self.global
            .read()
            .map_or_else(|p| p.into_inner().clone(), |g| g.clone())
    }

    /// Replace the coordinator's list (a reload); returns its size.
    pub fn replace(&self, list: Exclusions) -> usize {
        let len = list.len();
        match self.global.write() {
            Ok(mut global) => *global = Arc::new(list),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(list),
        }
        len
    }

    /// What applies to a scan with `options`: the coordinator's list and
    /// the scan's own. A scan list that no longer parses (it was checked at
    /// submit) adds nothing.
    pub fn for_scan(&self, options: &ScanOptions) -> Exclusions {
        let mut list = (*self.global()).clone();
        if let Ok(own) = Exclusions::from_lines(&options.exclusions) {
            list.extend(&own);
        }
        list
    }
}

/// Split `domains` into those to resolve and the records of the excluded.
pub fn split_domains(list: &Exclusions, domains: Vec<String>) -> (Vec<String>, Vec<DomainRecord>) {
    if list.is_empty() {
        return (domains, Vec::new());
    }
    let mut keep = Vec::with_capacity(domains.len());
    let mut excluded = Vec::new();
    for domain in domains {
        match list.domain(&domain) {
            Some(why) => excluded.push(excluded_domain(domain, Some(&why))),
            None => keep.push(domain),
        }
    }
    (keep, excluded)
}

/// Split `targets` into those to probe and the records of the excluded.
pub fn split_targets(
    list: &Exclusions,
    port: u16,
    targets: Vec<Target>,
) -> (Vec<Target>, Vec<TargetRecord>) {
    if list.is_empty() {
        return (targets, Vec::new());
    }
    let mut keep = Vec::with_capacity(targets.len());
    let mut excluded = Vec::new();
    for target in targets {
        match list.target(target.ip, &target.mx_names) {
            Some(why) => excluded.push(excluded_target(target.ip, port, target.mx_names, &why)),
            None => keep.push(target),
        }
    }
    (keep, excluded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_list_joins_the_coordinators_and_reload_replaces_it() {
        let set = ExclusionSet::new(Exclusions::parse("192.0.2.0/24\n").unwrap());
        let options = ScanOptions {
            exclusions: vec!["mx:provider.example".into()],
            ..ScanOptions::default()
        };
        let list = set.for_scan(&options);
        assert_eq!(list.len(), 2);
        let targets = vec![
            Target {
                ip: "192.0.2.5".parse().unwrap(),
                mx_names: vec!["a.example".into()],
            },
            Target {
                ip: "198.51.100.1".parse().unwrap(),
                mx_names: vec!["mx.provider.example".into()],
            },
            Target {
                ip: "198.51.100.2".parse().unwrap(),
                mx_names: vec!["b.example".into()],
            },
        ];
        let (keep, excluded) = split_targets(&list, 25, targets);
        assert_eq!(keep.len(), 1);
        assert_eq!(excluded.len(), 2);
        assert!(excluded.iter().all(|r| r.skip_reason.is_some()));

        assert_eq!(set.replace(Exclusions::parse("example.org\n").unwrap()), 1);
        let list = set.for_scan(&ScanOptions::default());
        assert!(list.address("192.0.2.5".parse().unwrap()).is_none());
        let (keep, excluded) =
            split_domains(&list, vec!["a.example.org".into(), "example.net".into()]);
        assert_eq!(keep, ["example.net"]);
        assert_eq!(excluded[0].domain, "a.example.org");
    }
}
