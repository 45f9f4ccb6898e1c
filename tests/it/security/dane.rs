//! DNSSEC status, DANE for SMTP and reverse DNS against the DNSSEC lab
//! (Knot on 127.0.0.1:5354, private root) and the lab Postfix: the exact
//! verdict of every case of `mxscope_tests::dns::knot::cases`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mxscope_common::record::security_dns::{
    DaneVerdict, DnssecReason, DnssecStatus, ReverseDnsVerdict,
};
use mxscope_tests::dns::forged::cases as forged;
use mxscope_tests::dns::knot::cases;
use mxscope_tests::{lab, plan};
use mxscope_worker::dns::DnsConfig;
use mxscope_worker::security::dane::{address_not_secure, dane_outcome, not_applicable};
use mxscope_worker::security::dnssec::{dane_applies, SecureResolver, TlsaLookup};
use mxscope_worker::security::rdns::reverse;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn resolver() -> SecureResolver {
    resolver_at(lab::knot().addr())
}

/// The validating resolver asking `server`, anchored at the lab's root.
fn resolver_at(server: SocketAddr) -> SecureResolver {
    let config = DnsConfig {
        resolvers: vec![server],
        timeout: Duration::from_secs(2),
        attempts: 1,
    };
    SecureResolver::new(&config, Some(&lab::knot().trust_anchor()))
        .expect("validating lab resolver")
}

/// Knot itself (authoritative for the whole signed hierarchy) and the
/// validating Unbound in front of it: the same verdicts through both.
fn resolvers() -> Vec<(&'static str, SecureResolver)> {
    vec![
        ("knot", resolver()),
        (
            "validating unbound",
            resolver_at(lab::validating_resolver().addr()),
        ),
    ]
}

#[tokio::test]
async fn dnssec_status_of_every_case() {
    use DnssecReason::*;
    use DnssecStatus::*;
    for (via, r) in resolvers() {
        let check = r.resolver_check().await;
        assert!(check.usable, "{via}: {check:?}");
        for (domain, want, reason) in [
            (cases::DANE_OK, Secure, None),
            (cases::NO_TLSA, Secure, None),
            (cases::MIXED, Secure, None),
            (cases::SECURE_NODATA, Secure, None),
            (cases::SECURE_NXDOMAIN, Secure, None),
            (cases::INSECURE, Insecure, Some(InsecureDelegation)),
            (cases::BOGUS, Bogus, Some(DsMismatch)),
            (forged::EXPIRED, Bogus, Some(SignatureExpired)),
            (forged::FUTURE, Bogus, Some(SignatureNotYetValid)),
            (forged::BADSIG, Bogus, Some(SignatureInvalid)),
            (forged::NOSIG, Bogus, Some(RrsigMissing)),
            (forged::BADTAG, Bogus, Some(DnskeyMissing)),
            (forged::NO_DENIAL, Bogus, Some(NsecProofFailed)),
            (forged::WRONG_SIGNER, Bogus, Some(SignatureInvalid)),
        ] {
            let v = r.mx_status(domain).await;
            assert_eq!(
                (v.status, v.reason),
                (want, reason),
                "{via}: MX of {domain}"
            );
        }
        for (name, want, reason) in [
            (cases::MX_DANE_OK, Secure, None),
            (cases::MX_DANE_TA, Secure, None),
            (cases::MX_NO_TLSA, Secure, None),
            (cases::MX_INSECURE, Insecure, Some(InsecureDelegation)),
            (cases::MX_BOGUS, Bogus, Some(DsMismatch)),
            (cases::MX_ALIAS_BOGUS, Bogus, Some(DsMismatch)),
        ] {
            let v = r.address_status(name).await;
            assert_eq!(
                (v.status, v.reason),
                (want, reason),
                "{via}: A/AAAA of {name}"
            );
        }
    }
    // The validating Unbound sets AD on what it validated; Knot never does.
    let (_, knot) = &resolvers()[0];
    assert!(!knot.resolver_check().await.ad);
    let validating = resolver_at(lab::validating_resolver().addr());
    assert!(validating.resolver_check().await.ad);
    // A name the validating Unbound refuses is indeterminate, not bogus.
    let v = validating
        .mx_status(mxscope_tests::dns::resolvers::REFUSED_NAME)
        .await;
    assert_eq!((v.status, v.reason), (Indeterminate, Some(LookupRefused)));
}

#[tokio::test]
async fn a_resolver_that_goes_away_mid_scan_leaves_verdicts_indeterminate() {
    use mxscope_tests::dns::resolvers::{Flavor, LabResolver, TRANSIENT_ADDR};
    let knot = lab::knot();
    let addr: SocketAddr = TRANSIENT_ADDR.parse().expect("an address");
    let mut unbound = LabResolver::start_at(
        &lab::dir().join("unbound-transient"),
        Flavor::Validating,
        addr,
        knot.addr(),
        &knot.trust_anchor(),
    )
    .expect("a validating Unbound of this test");
    let r = resolver_at(addr);
    let check = r.resolver_check().await;
    assert!(check.usable, "{check:?}");
    assert_eq!(
        r.mx_status(cases::DANE_OK).await.status,
        DnssecStatus::Secure
    );
    // The resolver dies after the self-check: its port is closed now, and
    // hickory treats an unanswered UDP query as a timeout (it ignores the
    // ICMP "port unreachable"). Nothing failed validation: never bogus.
    unbound.kill9();
    let v = r.mx_status(cases::NO_TLSA).await;
    assert_eq!(
        (v.status, v.reason),
        (
            DnssecStatus::Indeterminate,
            Some(DnssecReason::LookupTimeout)
        ),
        "{v:?}"
    );
}

#[tokio::test]
async fn dane_verdict_of_every_case() {
    lab::postfix();
    use DaneVerdict::*;
    for (via, r) in resolvers() {
        for (domain, mx, host, want) in [
            (cases::DANE_OK, cases::MX_DANE_OK, plan::MX_VALID, DaneValid),
            (
                cases::DANE_BAD,
                cases::MX_DANE_BAD,
                plan::MX_VALID,
                DaneMismatch,
            ),
            (cases::DANE_TA, cases::MX_DANE_TA, plan::MX_VALID, DaneValid),
            (
                cases::DANE_TA_NAME,
                cases::MX_DANE_TA_NAME,
                plan::MX_VALID,
                DaneMismatch,
            ),
            (cases::NO_TLSA, cases::MX_NO_TLSA, plan::MX_BACKUP, NoTlsa),
            (
                cases::TLSA_SERVFAIL,
                cases::MX_TLSA_SERVFAIL,
                plan::MX_VALID,
                TlsaLookupFailed,
            ),
            (
                cases::TLSA_BOGUS,
                cases::MX_TLSA_BOGUS,
                plan::MX_VALID,
                TlsaLookupFailed,
            ),
            (
                cases::MIXED,
                cases::MX_INSECURE,
                plan::MX_VALID,
                NotApplicableInsecure,
            ),
            (
                cases::INSECURE,
                cases::MX_INSECURE,
                plan::MX_VALID,
                NotApplicableInsecure,
            ),
            (cases::BOGUS, cases::MX_BOGUS, plan::MX_VALID, AddressBogus),
        ] {
            let chain = fetch_chain(SocketAddr::new(host.ip, plan::SMTP_PORT), mx)
                .await
                .unwrap_or_else(|e| panic!("STARTTLS to {}: {e}", host.name));
            let mx_status = r.mx_status(domain).await;
            let addr_status = r.address_status(mx).await;
            let result = if addr_status.status != DnssecStatus::Secure {
                address_not_secure(addr_status)
            } else if mx_status.status != DnssecStatus::Secure {
                not_applicable(&format!("MX {mx_status:?}"))
            } else {
                let lookup = r.tlsa(mx).await;
                dane_outcome(&lookup, &chain, mx, SystemTime::now())
            };
            assert_eq!(result.verdict, want, "{via}: {domain} via {mx}: {result:?}");
            if want == DaneValid || want == DaneMismatch {
                assert!(
                    !result.tlsa.is_empty(),
                    "{domain}: the TLSA records are kept"
                );
            }
        }
    }
}

#[tokio::test]
async fn tlsa_lookups_keep_nxdomain_apart_from_servfail() {
    for (via, r) in resolvers() {
        assert_eq!(
            r.tlsa(cases::MX_NO_TLSA).await,
            TlsaLookup::NoRecords,
            "{via}"
        );
        assert!(
            matches!(
                r.tlsa(cases::MX_TLSA_SERVFAIL).await,
                TlsaLookup::Failed(_, DnssecReason::LookupServfail)
            ),
            "{via}"
        );
        assert!(
            matches!(
                r.tlsa(cases::MX_TLSA_BOGUS).await,
                TlsaLookup::Failed(_, DnssecReason::DsMismatch)
            ),
            "{via}"
        );
    }
    let r = resolver();
    // Asked anyway, the insecure zone's TLSA is not usable.
    assert_eq!(r.tlsa(cases::MX_INSECURE).await, TlsaLookup::Insecure);
    let TlsaLookup::Records(records) = r.tlsa(cases::MX_DANE_OK).await else {
        panic!("TLSA of {}", cases::MX_DANE_OK);
    };
    let mut kinds: Vec<(u8, u8, u8)> = records
        .iter()
        .map(|t| (t.usage, t.selector, t.matching_type))
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec![(0, 0, 1), (3, 1, 1)]);
}

#[tokio::test]
async fn reverse_dns_of_every_case() {
    let r = resolver();
    use ReverseDnsVerdict::*;
    for (ip, want, names) in [
        (cases::PTR_OK, FcrdnsOk, vec![cases::RDNS_OK]),
        (
            cases::PTR_TWO,
            FcrdnsOk,
            vec![cases::RDNS_NOWHERE, cases::RDNS_TWO],
        ),
        (cases::PTR_DANGLING, PtrMismatch, vec![cases::RDNS_DANGLING]),
        (cases::PTR_ELSEWHERE, PtrMismatch, vec![cases::MX_DANE_BAD]),
        (cases::PTR_NONE, NoPtr, vec![]),
        (cases::PTR_SERVFAIL, LookupFailed, vec![]),
    ] {
        let ip = IpAddr::V4(Ipv4Addr::from(ip));
        let result = reverse(&r, ip).await;
        assert_eq!(result.verdict, want, "{ip}: {result:?}");
        assert_eq!(result.names, names, "{ip}");
    }
    // hickory answers loopback reverse lookups itself (RFC 6761): `localhost`.
    let lo = reverse(&r, IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10))).await;
    assert_eq!(lo.names, vec!["localhost"]);
}

/// What the checks cost: queries are counted from Knot's point of view
/// (hickory asks it for everything, including DNSKEY and DS), time on the
/// wall clock, each with a fresh resolver (cold cache) then again (warm).
#[tokio::test]
async fn cost_per_domain() {
    lab::postfix();
    for domain in [cases::DANE_OK, cases::NO_TLSA, cases::INSECURE] {
        let r = resolver();
        for round in ["cold", "warm"] {
            let before = lab::knot().queries();
            let start = Instant::now();
            let mx_status = r.mx_status(domain).await;
            let mx = match domain {
                cases::DANE_OK => cases::MX_DANE_OK,
                cases::NO_TLSA => cases::MX_NO_TLSA,
                _ => cases::MX_INSECURE,
            };
            let addr_status = r.address_status(mx).await;
            if dane_applies(mx_status.status, addr_status.status) {
                let _ = r.tlsa(mx).await;
            }
            let _ = reverse(&r, IpAddr::V4(Ipv4Addr::from(cases::PTR_OK))).await;
            let elapsed = start.elapsed();
            let queries = lab::knot().queries().zip(before).map(|(a, b)| a - b);
            eprintln!("cost {domain} {round}: {elapsed:?}, {queries:?} queries");
        }
    }
}

/// The certificate chain (DER, leaf first) an SMTP server presents after
/// STARTTLS, without judging it.
async fn fetch_chain(addr: SocketAddr, sni: &str) -> Result<Vec<Vec<u8>>, String> {
    tokio::time::timeout(Duration::from_secs(10), fetch_chain_inner(addr, sni))
        .await
        .map_err(|_| "timed out".to_string())?
}

async fn fetch_chain_inner(addr: SocketAddr, sni: &str) -> Result<Vec<Vec<u8>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    read_reply(&mut stream).await?;
    stream
        .get_mut()
        .write_all(b"EHLO probe.mxscope.lab.test\r\n")
        .await
        .map_err(|e| e.to_string())?;
    read_reply(&mut stream).await?;
    stream
        .get_mut()
        .write_all(b"STARTTLS\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let code = read_reply(&mut stream).await?;
    if code != "220" {
        return Err(format!("STARTTLS answered {code}"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAll))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, stream.into_inner())
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    Ok(conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect())
}

/// Read one (possibly multi-line) SMTP reply; its code.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    for _ in 0..64 {
        let mut line = String::new();
        let n = stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.chars().take(3).collect());
        }
    }
    Err("reply too long".into())
}

#[derive(Debug)]
struct AcceptAll;

impl ServerCertVerifier for AcceptAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
