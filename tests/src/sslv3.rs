//! Scripted SSLv3 server. OWNED BY THE LEGACY HELPER — stub.

use tokio::net::TcpListener;

/// Serve SMTP with STARTTLS on `listener`; after STARTTLS, answer an SSLv3
/// ClientHello with a canned SSLv3 ServerHello and anything else with a
/// `protocol_version` alert.
pub async fn serve(listener: TcpListener) {
    let _ = listener;
    todo!("legacy helper")
}
