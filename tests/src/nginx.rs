//! The lab's MTA-STS policy hosts: Debian's nginx, in the foreground, serving
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` for the MTA-STS test
//! domains on [`NGINX_IP`]`:443` with lab-CA certificates, and the DNS
//! records those domains need ([`policy_records`], added to Unbound's zone).
//!
//! nginx runs as one process (`master_process off`), so the lab's
//! parent-death signal takes all of it; every file (config, pid, logs,
//! temp folders, certificates, policies) lives in the lab folder. It binds
//! only [`NGINX_IP`].

use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::certs::LabCerts;
use crate::plan;
use crate::process::Daemon;

/// nginx listens here (port 443) for every policy host.
pub const NGINX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 60);
/// An address where nothing listens: a policy host that does not answer.
pub const SILENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 69);
/// HTTPS port of the policy hosts.
pub const HTTPS_PORT: u16 = 443;
/// How long nginx may take to accept its first connection.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The MTA-STS and TLS-RPT test domains (all in `lab.test`).
pub mod sts_domains {
    /// `mode: enforce`, `mx: mx-other.example` and `mx: *.lab.test`;
    /// MX mx-valid: `enforce_ok`. Valid TLS-RPT record (mailto + https).
    pub const ENFORCE: &str = "sts-enforce.lab.test";
    /// `mode: enforce`, patterns that do not cover its MX mx-valid
    /// (`*.mx.lab.test` is one label too deep): `enforce_would_fail`.
    /// Malformed TLS-RPT record.
    pub const NOMATCH: &str = "sts-nomatch.lab.test";
    /// `mode: enforce`, `mx: *.lab.test`, MX mx-expired and mx-selfsigned:
    /// `enforce_would_fail` for both certificates.
    pub const BADCERT: &str = "sts-badcert.lab.test";
    /// `mode: testing`, MX mx-valid. No TLS-RPT record.
    pub const TESTING: &str = "sts-testing.lab.test";
    /// `mode: none`, MX mx-valid.
    pub const NONE: &str = "sts-none.lab.test";
    /// TXT record, but `mta-sts.<domain>` does not exist: `txt_without_policy`.
    pub const NOHOST: &str = "sts-nohost.lab.test";
    /// TXT record, `mta-sts.<domain>` points at [`super::SILENT_IP`] where
    /// nothing listens: `txt_without_policy`.
    pub const NOANSWER: &str = "sts-noanswer.lab.test";
    /// A policy of more than 64 KiB: `policy_fetch_failed`.
    pub const LARGE: &str = "sts-large.lab.test";
    /// The policy URL answers `301`: `policy_fetch_failed`.
    pub const REDIRECT: &str = "sts-redirect.lab.test";
    /// Two `v=STSv1` TXT records: `txt_invalid`.
    pub const TWOTXT: &str = "sts-twotxt.lab.test";
    /// A domain with neither record (MX mx-valid): `no_mta_sts`, TLS-RPT absent.
    pub const ABSENT: &str = crate::plan::domains::SINGLE;

    /// The `id` of every valid `_mta-sts` record.
    pub const TXT_ID: &str = "20240101T000000";
    /// The report URIs of [`ENFORCE`]'s TLS-RPT record.
    pub const RUA: [&str; 2] = ["mailto:tlsrpt@lab.test", "https://tlsrpt.lab.test/v1"];
}

use sts_domains as d;

/// One served policy host: domain, policy body (or `None` for a redirect).
fn served() -> Vec<(&'static str, Option<String>)> {
    let mx_valid = plan::MX_VALID.name;
    let policy = |mode: &str, mx: &[&str]| {
        let mut body = format!("version: STSv1\r\nmode: {mode}\r\n");
        for pattern in mx {
            let _ = write!(body, "mx: {pattern}\r\n");
        }
        body.push_str("max_age: 86400\r\n");
        body
    };
    let mut large = policy("enforce", &[mx_valid]);
    while large.len() <= 70 * 1024 {
        let _ = write!(large, "x-padding: {}\r\n", "x".repeat(100));
    }
    vec![
        (
            d::ENFORCE,
            Some(policy("enforce", &["mx-other.example", "*.lab.test"])),
        ),
        (
            d::NOMATCH,
            Some(policy(
                "enforce",
                &["mail.elsewhere.example", "*.mx.lab.test"],
            )),
        ),
        (d::BADCERT, Some(policy("enforce", &["*.lab.test"]))),
        (d::TESTING, Some(policy("testing", &[mx_valid]))),
        (d::NONE, Some(policy("none", &[]))),
        (d::LARGE, Some(large)),
        (d::REDIRECT, None),
    ]
}

/// The DNS records of the MTA-STS cases, as `(name, type, data)`.
pub fn policy_records() -> Vec<(String, String, String)> {
    let mut records = Vec::new();
    let mut add = |name: String, rtype: &str, data: String| {
        records.push((name, rtype.to_string(), data));
    };
    let mx = |host: &str| format!("10 {host}.");
    let sts_txt = format!("\"v=STSv1; id={}\"", d::TXT_ID);

    for (domain, _) in served() {
        add(format!("mta-sts.{domain}"), "A", NGINX_IP.to_string());
    }
    for domain in [
        d::ENFORCE,
        d::NOMATCH,
        d::BADCERT,
        d::TESTING,
        d::NONE,
        d::NOHOST,
        d::NOANSWER,
        d::LARGE,
        d::REDIRECT,
        d::TWOTXT,
    ] {
        add(format!("_mta-sts.{domain}"), "TXT", sts_txt.clone());
        if domain != d::BADCERT {
            add(domain.to_string(), "MX", mx(plan::MX_VALID.name));
        }
    }
    add(d::BADCERT.to_string(), "MX", mx(plan::MX_EXPIRED.name));
    add(
        d::BADCERT.to_string(),
        "MX",
        format!("20 {}.", plan::MX_SELFSIGNED.name),
    );
    add(
        format!("mta-sts.{}", d::NOANSWER),
        "A",
        SILENT_IP.to_string(),
    );
    add(
        format!("_mta-sts.{}", d::TWOTXT),
        "TXT",
        "\"v=STSv1; id=second\"".to_string(),
    );
    add(
        format!("_smtp._tls.{}", d::ENFORCE),
        "TXT",
        format!("\"v=TLSRPTv1; rua={},{}\"", d::RUA[0], d::RUA[1]),
    );
    add(
        format!("_smtp._tls.{}", d::NOMATCH),
        "TXT",
        "\"v=TLSRPTv1; rua=ftp://tlsrpt.lab.test\"".to_string(),
    );
    records
}

/// nginx serving every policy host on [`NGINX_IP`]`:443`.
#[derive(Debug)]
pub struct Nginx {
    daemon: Daemon,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    /// Write certificates, policies and config under `dir`; start nginx and
    /// wait until it accepts connections.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(IpAddr::V4(NGINX_IP), HTTPS_PORT);
        for sub in ["tls", "www", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}/{sub}", dir.display()))?;
        }
        let mut servers = String::new();
        for (domain, body) in served() {
            let host = format!("mta-sts.{domain}");
            let (chain, key) = certs
                .issue(&host)
                .with_context(|| format!("issuing a certificate for {host}"))?;
            let chain_path = dir.join("tls").join(format!("{host}.chain.pem"));
            let key_path = dir.join("tls").join(format!("{host}.key"));
            std::fs::write(&chain_path, chain).context("writing a chain")?;
            std::fs::write(&key_path, key).context("writing a key")?;
            let root = dir.join("www").join(&host);
            let location = match body {
                Some(body) => {
                    let well_known = root.join(".well-known");
                    std::fs::create_dir_all(&well_known).context("creating .well-known")?;
                    std::fs::write(well_known.join("mta-sts.txt"), body)
                        .context("writing a policy")?;
                    String::new()
                }
                None => format!(
                    "return 301 https://mta-sts.{}/.well-known/mta-sts.txt;",
                    d::ENFORCE
                ),
            };
            let _ = writeln!(
                servers,
                r#"    server {{
        listen {addr} ssl;
        server_name {host};
        ssl_certificate {chain};
        ssl_certificate_key {key};
        root {root};
        location = /.well-known/mta-sts.txt {{ {location} }}
        location / {{ return 404; }}
    }}"#,
                chain = chain_path.display(),
                key = key_path.display(),
                root = root.display(),
            );
        }
        let dd = dir.display();
        let conf = format!(
            r#"master_process off;
worker_processes 1;
pid {dd}/nginx.pid;
error_log {dd}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dd}/access.log;
    client_body_temp_path {dd}/tmp/body;
    proxy_temp_path {dd}/tmp/proxy;
    fastcgi_temp_path {dd}/tmp/fastcgi;
    uwsgi_temp_path {dd}/tmp/uwsgi;
    scgi_temp_path {dd}/tmp/scgi;
    types {{ text/plain txt; }}
    default_type application/octet-stream;
    server_tokens off;
    ssl_protocols TLSv1.2 TLSv1.3;
{servers}}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).context("writing nginx.conf")?;

        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nginx");
        let stderr = File::create(dir.join("nginx.stderr")).context("creating nginx.stderr")?;
        let mut cmd = Command::new(binary);
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg("daemon off;")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let daemon = Daemon::spawn("nginx", cmd)
            .with_context(|| format!("starting {binary} (is nginx-light installed?)"))?;
        let mut nginx = Self {
            daemon,
            addr,
            dir: dir.to_path_buf(),
        };
        nginx.wait_ready()?;
        Ok(nginx)
    }

    /// `NGINX_IP:443`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// nginx's access log (one line per fetch).
    pub fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.daemon.exited() {
                bail!("nginx exited with {status}\n{}", self.logs());
            }
            match TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    bail!(
                        "nginx did not accept on {} within {START_DEADLINE:?} ({e})\n{}",
                        self.addr,
                        self.logs()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| format!("({e})"))
        };
        format!(
            "--- nginx.stderr ---\n{}\n--- error.log ---\n{}",
            read("nginx.stderr"),
            read("error.log")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_on_loopback_and_cover_every_case() {
        let records = policy_records();
        for (name, rtype, data) in &records {
            assert!(name.ends_with(".lab.test"), "{name}");
            if rtype == "A" {
                let ip: IpAddr = data.parse().expect("an address");
                assert!(ip.is_loopback(), "{name} {data}");
            }
        }
        let has = |name: &str, rtype: &str| {
            records
                .iter()
                .any(|(n, t, _)| n.as_str() == name && t.as_str() == rtype)
        };
        assert!(has("_mta-sts.sts-nohost.lab.test", "TXT"));
        assert!(!has("mta-sts.sts-nohost.lab.test", "A"));
        assert!(has("mta-sts.sts-enforce.lab.test", "A"));
        assert!(has("_smtp._tls.sts-enforce.lab.test", "TXT"));
        assert!(!has("_smtp._tls.sts-testing.lab.test", "TXT"));
    }

    #[test]
    fn the_large_policy_is_over_64_kib() {
        let large = served()
            .into_iter()
            .find(|(domain, _)| *domain == d::LARGE)
            .and_then(|(_, body)| body)
            .expect("the large policy");
        assert!(large.len() > 64 * 1024);
    }
}
