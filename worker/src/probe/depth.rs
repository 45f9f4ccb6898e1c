//! The depth probe's sessions (`--tls-depth classes|suites`): one fresh
//! SMTP session per step of [`DepthRun`], each waiting for its turn at the
//! IP like every extra session, within the per-IP budget.

use mxscope_common::TargetRecord;
use tokio::time::Instant;

use super::Prober;
use crate::tls::depth::{self, Answer, DepthRun};

impl Prober {
    /// Run the depth probe over the versions the main session and the
    /// version probes found supported; its sessions count in `sessions`.
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
        let depth = run.finish();
        record.sessions += depth.sessions;
        record.tls_depth = Some(depth);
    }
}
