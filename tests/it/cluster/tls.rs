//! The gRPC channel over TLS and mutual TLS, and the egress check, with
//! real processes.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use mxscope_common::wire::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::wire::proto::{self};
use mxscope_coordinator::grpc::client::{bearer, channel_with, AdminClient, ClientTls};
use mxscope_coordinator::model::ScanState;
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: Vec<u8>,
    client_key: Vec<u8>,
    client_cert_path: std::path::PathBuf,
    client_key_path: std::path::PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mxscope test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = |san: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
        params.is_ca = IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![usage];
        params.distinguished_name.push(DnType::CommonName, san);
        (
            params.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let (server_cert, server_key) = leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) =
        leaf("worker.mxscope.test", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert_path: write("client.pem", &client_cert),
        client_key_path: write("client.key", &client_key),
        client_cert: client_cert.into_bytes(),
        client_key: client_key.into_bytes(),
    }
}

fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    items.iter().map(|i| i.as_ref().to_os_string()).collect()
}

/// `mxscope serve` with the server certificate of `pki` and `extra` arguments.
fn tls_coordinator(dir: &Path, pki: &Pki, extra: &[OsString]) -> CoordinatorProcess {
    let mut all = args(&[
        &"--tls-cert",
        &pki.server_cert,
        &"--tls-key",
        &pki.server_key,
    ]);
    all.extend_from_slice(extra);
    CoordinatorProcess::start_with(&dir.join("data"), "10s", "127.0.0.1:0", &all).unwrap()
}

async fn wait_done(admin: &mut AdminClient, scan: &str) {
    wait_for(Duration::from_secs(60), "the scan to finish", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status(scan).await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;
}

/// A scan over mutual TLS: the worker and the admin present client
/// certificates; a client without one is refused.
#[tokio::test(flavor = "multi_thread")]
async fn scan_over_mutual_tls() {
    lab::postfix();
    let dir = test_dir("mtls");
    let pki = pki(&dir);
    let coordinator = tls_coordinator(&dir, &pki, &args(&[&"--client-ca", &pki.ca]));
    assert!(
        coordinator.url.starts_with("https://"),
        "{}",
        coordinator.url
    );
    let ca_pem = std::fs::read(&pki.ca).unwrap();
    let with_cert = ClientTls {
        ca_pem: Some(ca_pem.clone()),
        identity: Some((pki.client_cert.clone(), pki.client_key.clone())),
    };
    // Without a client certificate the TLS handshake is refused.
    let without_cert = ClientTls {
        ca_pem: Some(ca_pem),
        identity: None,
    };
    let refused = match channel_with(&coordinator.url, &without_cert).await {
        Err(_) => true,
        Ok(channel) => {
            WorkerServiceClient::with_interceptor(channel, bearer(Some(WORKER_TOKEN)).unwrap())
                .lease(proto::LeaseRequest {
                    worker_id: "x".into(),
                    vantage: "M".into(),
                    max_tasks: 1,
                    max_items: 0,
                    wait_ms: 0,
                    slots: None,
                })
                .await
                .is_err()
        }
    };
    assert!(refused, "a client without a certificate got through");

    let worker_args = args(&[
        &"--coordinator-ca",
        &pki.ca,
        &"--client-cert",
        &pki.client_cert_path,
        &"--client-key",
        &pki.client_key_path,
    ]);
    let _worker = WorkerProcess::start_with(
        &coordinator.url,
        "M",
        IpAddr::V4(Ipv4Addr::new(127, 0, 2, 41)),
        "mtls-worker",
        &dir,
        &worker_args,
    )
    .unwrap();
    let mut admin = AdminClient::connect_with(&coordinator.url, Some(ADMIN_TOKEN), &with_cert)
        .await
        .unwrap();
    let scan = admin
        .submit(
            "mtls".into(),
            Default::default(),
            vec!["M".into()],
            &lab_options(),
            false,
            vec![domains::SINGLE.into()],
        )
        .await
        .unwrap()
        .scan_id;
    wait_done(&mut admin, &scan).await;
    let status = admin.status(&scan).await.unwrap();
    assert_eq!((status.domain_records, status.target_records), (1, 1));
}

/// The whole error chain of a failed connection, for matching its cause.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Who the admin client trusts: the CA file when given (the lab coordinator
/// is reached); without one the public roots, so a certificate of a private
/// CA is refused as an unknown issuer; a wrong CA file is refused too.
/// (That the public roots are the ones trusted is a unit test of
/// `mxscope_common::wire::client::client_tls`: no public CA signs for loopback.)
#[tokio::test(flavor = "multi_thread")]
async fn client_trust_follows_the_ca_file() {
    let dir = test_dir("trust");
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = pki(&other_dir);
    let pki = pki(&dir);
    let coordinator = tls_coordinator(&dir, &pki, &[]);
    let trusting = |ca: Option<&Path>| ClientTls {
        ca_pem: ca.map(|path| std::fs::read(path).unwrap()),
        identity: None,
    };
    let mut admin = AdminClient::connect_with(
        &coordinator.url,
        Some(ADMIN_TOKEN),
        &trusting(Some(&pki.ca)),
    )
    .await
    .expect("the coordinator's own CA is trusted");
    admin.list().await.expect("listing scans over TLS");
    // The other CA has the same name as the right one: its key does not
    // verify the server's signature.
    for (case, tls, cause) in [
        ("no CA file (public roots)", trusting(None), "UnknownIssuer"),
        ("another CA", trusting(Some(&other.ca)), "BadSignature"),
    ] {
        let error = AdminClient::connect_with(&coordinator.url, Some(ADMIN_TOKEN), &tls)
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: a private CA's certificate was accepted"));
        let text = chain(&error);
        assert!(
            text.contains("invalid peer certificate") && text.contains(cause),
            "{case}: {text}"
        );
    }
}

/// A worker whose port-25 egress check fails resolves but gets no probe task.
#[tokio::test(flavor = "multi_thread")]
async fn vantage_without_egress_gets_no_probe_tasks() {
    lab::postfix();
    let dir = test_dir("egress");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "10s").unwrap();
    // Nothing listens on MX_CLOSED: the check fails.
    let check = format!("{}:{}", MX_CLOSED.ip, SMTP_PORT);
    let _worker = WorkerProcess::start_with(
        &coordinator.url,
        "E",
        IpAddr::V4(Ipv4Addr::new(127, 0, 2, 51)),
        "no-egress",
        &dir,
        &args(&[&"--egress-check", &check]),
    )
    .unwrap();
    let mut admin = coordinator.admin().await;
    let scan = admin
        .submit(
            "egress".into(),
            Default::default(),
            vec!["E".into()],
            &lab_options(),
            false,
            vec![domains::SINGLE.into()],
        )
        .await
        .unwrap()
        .scan_id;
    let status = wait_for(Duration::from_secs(30), "the resolve phase", || {
        let mut admin = admin.clone();
        let scan = scan.clone();
        async move {
            let status = admin.status(&scan).await.ok()?;
            (status.resolve.done == status.resolve.total && status.probe.total > 0)
                .then_some(status)
        }
    })
    .await;
    // Give the worker several lease rounds: probe tasks stay pending.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status2 = admin.status(&scan).await.unwrap();
    assert_eq!(status.domain_records, 1);
    assert_eq!(
        (status2.probe.leased, status2.probe.done),
        (0, 0),
        "{status2:?}"
    );
    assert_eq!(status2.probe.pending, status2.probe.total);
    assert_eq!(status2.target_records, 0);
}
