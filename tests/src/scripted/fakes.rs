//! The plan's fake hosts (DESIGN §6), each a script of the scripted fake
//! ([`crate::scripted`]) on its lab address: the cases no real MTA shows —
//! endless replies, huge lines, trickling bytes, response injection after
//! STARTTLS, invalid UTF-8, a server that never greets, the SSLv3 server,
//! a session counter and a server whose STARTTLS the test switches. They run
//! on a runtime of their own, so they outlive any one test's runtime.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::certs::LabCerts;
use crate::plan::{self, Host};
use crate::scripted::scripts::{self, Leaf};
use crate::scripted::{self, say, Script, SessionCounts, Step, Tls};

/// The running fakes (a runtime on a thread of its own, for the process's life).
#[derive(Debug)]
pub struct Fakes {
    _thread: std::thread::JoinHandle<()>,
    counts: SessionCounts,
    toggle: Arc<AtomicBool>,
}

impl Fakes {
    /// Bind every fake of the plan on its address and start serving. Safe to
    /// call from inside another runtime (a `#[tokio::test]`).
    pub fn start(certs: &LabCerts) -> anyhow::Result<Self> {
        let inject = issue(certs, plan::MX_INJECT)?;
        let toggle_leaf = issue(certs, plan::MX_TOGGLE)?;
        let vulnerable = super::vuln_tls::script(&issue(certs, plan::MX_VULN)?)?;
        let counts = SessionCounts::default();
        let toggle = Arc::new(AtomicBool::new(true));
        let (server_counts, server_toggle) = (counts.clone(), toggle.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("lab-fakes".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = bind_all(
                        &inject,
                        &toggle_leaf,
                        vulnerable,
                        server_counts,
                        server_toggle,
                    );
                    let _ = ready_tx.send(started.await);
                    std::future::pending::<()>().await;
                });
            })
            .context("spawning the fakes' thread")?;
        ready_rx
            .recv()
            .context("the fakes' thread ended before binding")??;
        Ok(Self {
            _thread: thread,
            counts,
            toggle,
        })
    }

    /// Switch STARTTLS of [`plan::MX_TOGGLE`] on or off (it starts on).
    pub fn set_toggle_starttls(&self, on: bool) {
        self.toggle.store(on, Ordering::SeqCst);
    }

    /// SMTP sessions the counting server ([`plan::MX_COUNT`]) had from `client`.
    pub fn sessions_from(&self, client: IpAddr) -> usize {
        self.counts
            .lock()
            .map(|c| c.get(&client).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

fn issue(certs: &LabCerts, host: Host) -> anyhow::Result<Leaf> {
    let (chain_pem, key_pem) = certs.issue(host.name)?;
    Ok(Leaf { chain_pem, key_pem })
}

async fn bind_all(
    inject: &Leaf,
    toggle_leaf: &Leaf,
    vulnerable: Script,
    counts: SessionCounts,
    toggle: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let fixed = [
        (plan::MX_SILENT, silent()),
        (plan::MX_ENDLESS, endless()),
        (plan::MX_LONGLINE, long_line()),
        (plan::MX_TRICKLE, trickle()),
        (plan::MX_BADUTF8, bad_utf8()),
        (plan::MX_INJECT, injecting(scripts::real(inject)?)),
        (plan::MX_SSL3, super::sslv3::script()),
        (plan::MX_WEAKTLS, super::weak_tls::script()),
        (plan::MX_VULN, vulnerable),
    ];
    for (host, script) in fixed {
        tokio::spawn(scripted::serve_script(bind(host).await?, script));
    }

    let count = Arc::new(Script::plain(plan::MX_COUNT.name));
    let listener = bind(plan::MX_COUNT).await?;
    tokio::spawn(scripted::serve(listener, move || count.clone(), counts));

    let on = Arc::new(Script {
        ehlo: say(format!("250-{}\r\n250 STARTTLS\r\n", plan::MX_TOGGLE.name)),
        ..Script::smtp(plan::MX_TOGGLE.name, Tls::Real(scripts::real(toggle_leaf)?))
    });
    let off = Arc::new(Script::plain(plan::MX_TOGGLE.name));
    let listener = bind(plan::MX_TOGGLE).await?;
    let pick = move || match toggle.load(Ordering::SeqCst) {
        true => on.clone(),
        false => off.clone(),
    };
    tokio::spawn(scripted::serve(listener, pick, SessionCounts::default()));
    Ok(())
}

async fn bind(host: Host) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(host.ip, plan::SMTP_PORT);
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding fake {} on {addr}", host.name))
}

/// Accepts, never greets, keeps the connection open.
pub fn silent() -> Script {
    Script {
        greeting: vec![Step::Drain],
        ..Script::plain(plan::MX_SILENT.name)
    }
}

/// `220-` continuation lines that never end (8 MiB of them).
pub fn endless() -> Script {
    let line = format!("220-{} this reply never ends\r\n", plan::MX_ENDLESS.name);
    Script {
        greeting: vec![Step::Repeat {
            line: line.into_bytes(),
            total: scripted::MAX_SCRIPTED_WRITE,
        }],
        ..Script::plain(plan::MX_ENDLESS.name)
    }
}

/// A greeting line of 1 MiB, then silence.
pub fn long_line() -> Script {
    Script {
        greeting: vec![
            Step::send("220 "),
            Step::Repeat {
                line: vec![b'a'; 64 * 1024],
                total: 1024 * 1024,
            },
            Step::send("\r\n"),
            Step::Drain,
        ],
        ..Script::plain(plan::MX_LONGLINE.name)
    }
}

/// A greeting at one byte per second.
pub fn trickle() -> Script {
    let line = format!("220-{} slow\r\n", plan::MX_TRICKLE.name);
    Script {
        greeting: vec![Step::Trickle {
            bytes: line.into_bytes(),
            every: Duration::from_secs(1),
            total: 600,
        }],
        ..Script::plain(plan::MX_TRICKLE.name)
    }
}

/// Replies with bytes that are not UTF-8, and no STARTTLS.
pub fn bad_utf8() -> Script {
    Script {
        greeting: say(b"220 mx-badutf8.lab.test \xff\xfe ESMTP\r\n"),
        ehlo: say(b"250-mx-badutf8.lab.test \xc3\x28\r\n250 8BITMIME\r\n"),
        other: say("250 ok\r\n"),
        ..Script::plain(plan::MX_BADUTF8.name)
    }
}

/// STARTTLS whose 220 is followed, in the same write, by an injected reply;
/// then a real TLS session.
pub fn injecting(acceptor: tokio_rustls::TlsAcceptor) -> Script {
    let host = plan::MX_INJECT.name;
    Script {
        ehlo: say(format!("250-{host}\r\n250 STARTTLS\r\n")),
        starttls: say("220 ready\r\n250-INJECTED before TLS\r\n250 AUTH PLAIN\r\n"),
        ..Script::smtp(host, Tls::Real(acceptor))
    }
}
