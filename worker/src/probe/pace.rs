//! What a probe awaits before each further session to its IP (DESIGN §8:
//! the minimum gap between sessions to one IP holds for the legacy-version,
//! certificate-per-name and first-flight sessions too).
//!
//! The probe knows only this trait; the fleet's pacer implements it
//! (`fleet::pace::pacing::PacedSessions`). A prober without one (`mxscope-worker
//! probe`) opens its extra sessions back to back.

use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// A turn for one more session to an IP.
pub trait SessionPace: Debug + Send + Sync {
    /// Resolves when a session to `ip` may start (and counts it as started).
    fn turn(&self, ip: IpAddr) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
