//! The depth probe's sessions (`--tls-depth classes|suites`): one fresh
//! SMTP session per step of [`DepthRun`], each waiting for its turn at the
//! IP like every extra session, within the per-IP budget.

use mxscope_common::TargetRecord;
use tokio::time::Instant;

use mxscope_common::{SuiteChoice, VersionSupport};

use super::{protocol_slot, Prober};
use crate::tls::depth::catalog::DepthVersion;
use crate::tls::depth::{self, Answer, DepthRun};

impl Prober {
    /// Run the depth probe; its first hellos per version are the version
    /// probes (support and the suite chosen go to `protocols` and
    /// `protocol_suites`); its sessions count in `sessions`.
    pub(super) async fn depth_sessions(&self, record: &mut TargetRecord) {
        let sni = record.mx_names.first().cloned();
        let mut run = DepthRun::new(
            self.config.depth,
            self.config.depth_budget,
            &record.protocols,
        );
        while let Some(step) = run.next_step() {
            let version = run.version_of(&step);
            let answer = match self.open_after_starttls(record.ip).await {
                Ok(mut conn) => {
                    let remaining = conn.deadline.saturating_duration_since(Instant::now());
                    let timeout = self.config.timeouts.handshake.min(remaining);
                    depth::ask(&mut conn.stream, &step, version, sni.as_deref(), timeout).await
                }
                Err(end) => Answer::Failed(format!(
                    "no session: {}",
                    end.detail.as_deref().unwrap_or("connection failed")
                )),
            };
            run.record(&step, answer);
        }
        for (version, support, first) in run.support() {
            let DepthVersion::Legacy(legacy) = version else {
                continue;
            };
            let slot = protocol_slot(record, legacy);
            if *slot != VersionSupport::Supported {
                *slot = support;
            }
            if let Some(cipher) = first {
                record
                    .protocol_suites
                    .entry(legacy.key().to_owned())
                    .or_insert_with(|| SuiteChoice::new(cipher));
            }
        }
        let depth = run.finish();
        record.sessions += depth.sessions;
        record.tls_depth = Some(depth);
    }
}
