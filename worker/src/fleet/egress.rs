//! The vantage self-check (DESIGN §8): can this worker open TCP connections
//! to port 25 out of its network? Many networks block it, and a worker that
//! cannot would report every MX as unreachable. The result goes to the
//! coordinator in `Register`; it gives no probe tasks to a vantage without
//! egress.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// The whole check (name lookup and connect) takes at most this long.
pub const EGRESS_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of the self-check (a plain type of the worker contract).
pub use mxscope_common::wire::task::EgressReport;

/// Try a TCP connection to `target` (HOST:PORT) from `bind` within
/// `timeout`; no check (and `checked: false`) when `target` is `None`.
pub async fn check(target: Option<&str>, bind: Option<IpAddr>, timeout: Duration) -> EgressReport {
    let Some(target) = target else {
        return EgressReport::default();
    };
    let outcome = tokio::time::timeout(timeout, connect(target, bind)).await;
    let (ok, detail) = match outcome {
        Err(_) => (
            false,
            format!("no connection within {}s", timeout.as_secs_f32()),
        ),
        Ok(Err(reason)) => (false, reason),
        Ok(Ok(peer)) => (true, format!("connected to {peer}")),
    };
    EgressReport {
        checked: true,
        ok,
        target: target.to_string(),
        detail,
    }
}

/// Connect to the first address of `target` that accepts; the connection is
/// closed at once (nothing is sent).
async fn connect(target: &str, bind: Option<IpAddr>) -> Result<SocketAddr, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("resolving {target}: {e}"))?
        .filter(|addr| bind.is_none_or(|bind| bind.is_ipv4() == addr.is_ipv4()))
        .take(8)
        .collect();
    let mut last = format!("{target} has no address of the bound family");
    for addr in addresses {
        let attempt = match bind {
            None => TcpStream::connect(addr).await,
            Some(bind) => connect_from(bind, addr).await,
        };
        match attempt {
            Ok(_) => return Ok(addr),
            Err(error) => last = format!("connecting to {addr}: {error}"),
        }
    }
    Err(last)
}

async fn connect_from(bind: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(bind, 0))?;
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn not_configured_means_not_checked() {
        let report = check(None, None, EGRESS_TIMEOUT).await;
        assert!(!report.checked && !report.blocked());
    }

    #[tokio::test]
    async fn reachable_and_unreachable_on_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let bind = Some("127.0.0.1".parse().unwrap());
        let report = check(Some(&open), bind, EGRESS_TIMEOUT).await;
        assert!(report.checked && report.ok, "{report:?}");
        assert_eq!(report.target, open);

        drop(listener);
        let report = check(Some(&open), bind, EGRESS_TIMEOUT).await;
        assert!(report.blocked(), "{report:?}");
        assert!(report.detail.contains("connecting"), "{report:?}");

        // An IPv4 target from an IPv6 source has no usable address.
        let report = check(Some(&open), Some("::1".parse().unwrap()), EGRESS_TIMEOUT).await;
        assert!(report.blocked(), "{report:?}");
    }
}
