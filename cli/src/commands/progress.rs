//! The progress display of `mxscope scan` and `mxscope status --watch`: the
//! domains resolved and the MX addresses probed, each with its rate and a
//! readable estimate of the time left.
//!
//! ```text
//! ⠋ 12s domains      ███████████████░░░░░  350/500 resolved · 29/s · about 5 seconds left
//! ⠋ 12s MX addresses ██████░░░░░░░░░░░░░░  120/310 probed · 10/s · 3/9 probe tasks · about 19 seconds left
//! ```
//!
//! The MX addresses bar counts targets as each one ends (workers send a
//! task's records at least once a second); their number is known only as
//! the domains are resolved, so its estimate appears once every domain is
//! resolved.

use std::time::{Duration, Instant};

use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressStyle};
use mxscope_coordinator::service::{ScanStatus, TaskCounts};

/// Two bars over one scan.
#[derive(Debug)]
pub(crate) struct ScanProgress {
    _multi: MultiProgress,
    domains: ProgressBar,
    targets: ProgressBar,
    started: Instant,
}

fn bar(multi: &MultiProgress, label: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(0));
    let template = format!("{{spinner}} {{elapsed:>4}} {label:<12} {{bar:20}} {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

impl ScanProgress {
    pub(crate) fn new() -> Self {
        let multi = MultiProgress::new();
        Self {
            domains: bar(&multi, "domains"),
            targets: bar(&multi, "MX addresses"),
            _multi: multi,
            started: Instant::now(),
        }
    }

    pub(crate) fn update(&self, status: &ScanStatus) {
        let elapsed = self.started.elapsed();
        let domains_total = status.meta.domains * status.meta.vantages.len().max(1) as u64;
        let resolved = status.domain_records.min(domains_total);
        self.domains.set_length(domains_total);
        self.domains.set_position(resolved);
        self.domains
            .set_message(domains_line(resolved, domains_total, elapsed));
        // Targets as each one ends (its record arrives within a second of
        // it: workers send partial batches), not as whole tasks end.
        let finished = |c: &TaskCounts| c.done + c.failed;
        let planned = status.probe.items.max(status.target_records);
        self.targets.set_length(planned);
        self.targets.set_position(status.target_records);
        let resolving = finished(&status.resolve) < status.resolve.total;
        self.targets.set_message(targets_line(
            (status.target_records, planned),
            (finished(&status.probe), status.probe.total),
            resolving,
            elapsed,
        ));
    }

    pub(crate) fn finish(&self) {
        self.domains.finish_and_clear();
        self.targets.finish_and_clear();
    }
}

/// `count` per second over `elapsed`, rounded for reading.
fn rate(count: u64, elapsed: Duration) -> String {
    let per_sec = count as f64 / elapsed.as_secs_f64().max(0.001);
    if per_sec >= 10.0 {
        format!("{per_sec:.0}/s")
    } else {
        format!("{per_sec:.1}/s")
    }
}

/// "about N minutes left" for `left` more at the rate so far.
fn eta(done: u64, left: u64, elapsed: Duration) -> String {
    if left == 0 {
        return "done".into();
    }
    if done == 0 {
        return "estimating".into();
    }
    let seconds = elapsed.as_secs_f64() * left as f64 / done as f64;
    format!(
        "about {} left",
        HumanDuration(Duration::from_secs_f64(seconds.min(1e7)))
    )
}

fn domains_line(resolved: u64, total: u64, elapsed: Duration) -> String {
    format!(
        "{resolved}/{total} resolved · {} · {}",
        rate(resolved, elapsed),
        eta(resolved, total - resolved, elapsed)
    )
}

/// The time left follows targets, once every domain is resolved (before,
/// more targets may come).
fn targets_line(
    (probed, planned): (u64, u64),
    (tasks_done, tasks): (u64, u64),
    resolving: bool,
    elapsed: Duration,
) -> String {
    let mut line = format!(
        "{probed}/{planned} probed · {} · {tasks_done}/{tasks} probe tasks",
        rate(probed, elapsed)
    );
    if !resolving {
        line.push_str(" · ");
        line.push_str(&eta(probed, planned.saturating_sub(probed), elapsed));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_domains_and_addresses_with_readable_estimates() {
        let ten = Duration::from_secs(10);
        assert_eq!(
            domains_line(350, 500, ten),
            "350/500 resolved · 35/s · about 4 seconds left"
        );
        assert_eq!(
            domains_line(0, 500, ten),
            "0/500 resolved · 0.0/s · estimating"
        );
        assert_eq!(
            targets_line((120, 360), (0, 9), false, Duration::from_secs(60)),
            "120/360 probed · 2.0/s · 0/9 probe tasks · about 2 minutes left",
            "the estimate follows targets, not tasks (none done yet)"
        );
        assert_eq!(
            targets_line((12, 40), (1, 2), true, ten),
            "12/40 probed · 1.2/s · 1/2 probe tasks"
        );
        assert_eq!(
            domains_line(500, 500, ten),
            "500/500 resolved · 50/s · done"
        );
    }
}
