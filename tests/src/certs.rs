//! Lab certificates (DESIGN §6): a lab CA and one leaf per MX host, made with
//! `rcgen` at start and valid around *now*, written as PEM files.
//!
//! RSA keys come from `openssl genpkey` (rcgen cannot make RSA keys, and
//! `ring` refuses to load the RSA-1024 key at all): a leaf only needs its
//! public key, which [`RsaPublicKey`] hands to rcgen; only the CA and the
//! self-signed leaf sign with their own (RSA-2048) key.
//!
//! Files in [`LabCerts::dir`]: `ca.pem`, `ca.key`, and per host label (the
//! host name up to its first dot, e.g. `mx-valid`) `<label>.crt` (leaf only),
//! `<label>.chain.pem` (leaf then CA; the leaf alone when self-signed) and
//! `<label>.key` (PKCS#8).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rustls_pki_types::CertificateDer;

use crate::plan::{self, Host};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Name in the one SAN of [`plan::MX_MISMATCH`]'s leaf.
pub const MISMATCH_NAME: &str = "other-name.lab.test";

/// The key and validity of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// RSA-2048 from the lab CA, valid now.
    Valid,
    /// ECDSA P-256 from the lab CA.
    Ecdsa,
    /// RSA-2048, self-signed.
    SelfSigned,
    /// Lab CA, not_before a week ago, not_after yesterday.
    Expired,
    /// Lab CA, SAN [`MISMATCH_NAME`] only.
    Mismatch,
    /// Lab CA, RSA-1024.
    SmallKey,
    /// Lab CA, RSA-2048, signed with SHA-1 (`openssl x509 -sha1`: rcgen
    /// has no SHA-1), valid for 30 days from now.
    Sha1,
    /// Lab CA, RSA-2048, with two embedded SCTs ([`SCT_LOG_IDS`]) made up
    /// here: no log signed them, the structure is RFC 6962's.
    WithScts,
}

/// The log ids of the SCTs a [`Kind::WithScts`] leaf carries.
pub const SCT_LOG_IDS: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];

/// The SignedCertificateTimestampList extension (RFC 6962 §3.3): an OCTET
/// STRING holding the TLS-encoded list of `SCT_LOG_IDS`' timestamps.
fn sct_extension(now: SystemTime) -> anyhow::Result<rcgen::CustomExtension> {
    let millis = u64::try_from(now.duration_since(UNIX_EPOCH)?.as_millis())?;
    let mut list = Vec::new();
    for log_id in SCT_LOG_IDS {
        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(&log_id);
        sct.extend_from_slice(&millis.to_be_bytes());
        sct.extend_from_slice(&[0, 0]); // no extensions
        sct.extend_from_slice(&[4, 3, 0, 8]); // SHA-256, ECDSA, 8 bytes
        sct.extend_from_slice(&[0x5a; 8]);
        list.extend_from_slice(&u16::try_from(sct.len())?.to_be_bytes());
        list.extend_from_slice(&sct);
    }
    let mut tls = u16::try_from(list.len())?.to_be_bytes().to_vec();
    tls.extend_from_slice(&list);
    // DER OCTET STRING around it (short lengths only: the list is small).
    let mut octets = vec![0x04, u8::try_from(tls.len())?];
    octets.extend_from_slice(&tls);
    Ok(rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
        octets,
    ))
}

/// Every host with a leaf, and what its leaf looks like.
const LEAVES: &[(Host, Kind)] = &[
    (plan::MX_VALID, Kind::Valid),
    (plan::MX_ECDSA, Kind::Ecdsa),
    (plan::MX_SELFSIGNED, Kind::SelfSigned),
    (plan::MX_EXPIRED, Kind::Expired),
    (plan::MX_MISMATCH, Kind::Mismatch),
    (plan::MX_SMALLKEY, Kind::SmallKey),
    (plan::MX_LEGACY, Kind::Valid),
    (plan::MX_NOSTARTTLS, Kind::Valid),
    (plan::MX_DISCARD, Kind::Valid),
    (plan::MX_REFUSE, Kind::Valid),
    (plan::MX_TLS454, Kind::Valid),
    (plan::MX_BACKUP, Kind::Valid),
    (plan::MX_V6, Kind::Valid),
    (plan::MX_EXIM, Kind::Valid),
    (plan::MX_OPENSMTPD, Kind::Valid),
    (plan::MX_HARAKA, Kind::Valid),
    (plan::MX_SENDMAIL, Kind::Valid),
    (plan::MX_TLS10_RSA, Kind::Valid),
    (plan::MX_TLS12_RSA, Kind::Valid),
    (plan::MX_TLS12_CBC, Kind::Valid),
    (plan::MX_DHE, Kind::Valid),
    (plan::MX_SNI, Kind::Valid),
    (plan::MX_SNI_ALIAS, Kind::Valid),
    (plan::MX_WEAK, Kind::Valid),
    (plan::MX_PREFER, Kind::WithScts),
    (plan::MX_DH1024, Kind::Valid),
    (plan::MX_AEAD, Kind::Valid),
    (plan::MX_SHA1, Kind::Sha1),
];

/// The PEM files of one leaf.
#[derive(Debug, Clone)]
pub struct LeafFiles {
    /// The leaf certificate alone.
    pub cert: PathBuf,
    /// Leaf then lab CA (the leaf alone when self-signed): what servers send.
    pub chain: PathBuf,
    /// The leaf's private key (PKCS#8).
    pub key: PathBuf,
}

/// The lab CA and every leaf the lab's servers use, written as PEM files.
#[derive(Debug)]
pub struct LabCerts {
    /// Folder holding the PEM files.
    pub dir: PathBuf,
    /// The lab CA certificate (PEM): pass it as `--ca-file`.
    pub ca_pem: PathBuf,
    /// The lab CA certificate (DER), e.g. for a rustls root store.
    pub ca_der: CertificateDer<'static>,
    ca_params: CertificateParams,
    ca_key_pem: String,
    ca_cert_pem: String,
    leaves: BTreeMap<&'static str, LeafFiles>,
}

impl LabCerts {
    /// Generate the CA and all leaves into `dir`, valid around now.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = now();

        // All RSA keys at once: openssl runs them in parallel.
        let ca_key_path = dir.join("ca.key");
        let mut jobs = vec![(ca_key_path.clone(), 2048)];
        for (host, kind) in LEAVES {
            match kind {
                Kind::Ecdsa => {}
                Kind::SmallKey => jobs.push((key_path(dir, host), 1024)),
                _ => jobs.push((key_path(dir, host), 2048)),
            }
        }
        genrsa_all(&jobs)?;

        let ca_key_pem = read(&ca_key_path)?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("loading the lab CA key")?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn("mxscope lab CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca_params, now - DAY, now + 365 * DAY)?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the lab CA")?;
        let ca_cert_pem = ca_cert.pem();
        let ca_pem = dir.join("ca.pem");
        write(&ca_pem, &ca_cert_pem)?;

        let mut certs = Self {
            dir: dir.to_path_buf(),
            ca_pem,
            ca_der: ca_cert.der().clone(),
            ca_params,
            ca_key_pem,
            ca_cert_pem,
            leaves: BTreeMap::new(),
        };
        for (host, kind) in LEAVES {
            let files = certs
                .make_leaf(host, *kind)
                .with_context(|| format!("making the leaf of {}", host.name))?;
            certs.leaves.insert(host.name, files);
        }
        Ok(certs)
    }

    /// The leaf files of `host` (every Postfix and Exim host has one).
    pub fn leaf(&self, host: &Host) -> anyhow::Result<&LeafFiles> {
        self.leaves
            .get(host.name)
            .with_context(|| format!("the lab has no leaf for {}", host.name))
    }

    /// A DER OCSP response from the lab CA saying `host`'s leaf is good,
    /// valid for a week from now (`openssl ocsp` with a one-line index),
    /// written to `out`: what an MTA staples.
    pub fn ocsp_response(&self, host: &Host, out: &Path) -> anyhow::Result<()> {
        let leaf = self.leaf(host)?;
        let field = |flag: &str| -> anyhow::Result<String> {
            let out = Command::new("openssl")
                .args(["x509", "-noout", flag, "-in"])
                .arg(&leaf.cert)
                .output()
                .context("running openssl x509")?;
            let text = String::from_utf8(out.stdout)?;
            Ok(text
                .trim()
                .split_once('=')
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default())
        };
        let serial = field("-serial")?;
        let dir = out.parent().unwrap_or(&self.dir);
        let index = dir.join("ocsp-index.txt");
        // V, expiry (not checked by the responder), no revocation, serial,
        // file name, subject.
        write(
            &index,
            &format!("V\t301231000000Z\t\t{serial}\tunknown\t/CN={}\n", host.name),
        )?;
        let ca_key = dir.join("ocsp-ca.key");
        write(&ca_key, &self.ca_key_pem)?;
        let status = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(&index)
            .arg("-CA")
            .arg(&self.ca_pem)
            .arg("-rsigner")
            .arg(&self.ca_pem)
            .arg("-rkey")
            .arg(&ca_key)
            .arg("-issuer")
            .arg(&self.ca_pem)
            .arg("-cert")
            .arg(&leaf.cert)
            .args(["-ndays", "7", "-respout"])
            .arg(out)
            .stdin(Stdio::null())
            .output()
            .context("running openssl ocsp")?;
        anyhow::ensure!(
            status.status.success() && out.exists(),
            "openssl ocsp failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        Ok(())
    }

    /// Issue an extra lab-CA leaf for `name` (RSA-2048): (chain PEM, key PEM).
    pub fn issue(&self, name: &str) -> anyhow::Result<(String, String)> {
        let key_pem = genrsa_pem(2048)?;
        let key = KeyPair::from_pem(&key_pem).context("loading a fresh RSA-2048 key")?;
        let now = now();
        let params = leaf_params(name, now - DAY, now + 30 * DAY, false)?;
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).context("loading the lab CA key")?;
        let issuer = Issuer::from_params(&self.ca_params, &ca_key);
        let cert = params
            .signed_by(&key, &issuer)
            .with_context(|| format!("signing a leaf for {name}"))?;
        Ok((format!("{}{}", cert.pem(), self.ca_cert_pem), key_pem))
    }

    fn make_leaf(&self, host: &Host, kind: Kind) -> anyhow::Result<LeafFiles> {
        let now = now();
        let key_file = key_path(&self.dir, host);
        if kind == Kind::Sha1 {
            return self.sha1_leaf(host, key_file);
        }
        let (not_before, not_after) = match kind {
            Kind::Expired => (now - 7 * DAY, now - DAY),
            _ => (now - DAY, now + 30 * DAY),
        };
        let san = match kind {
            Kind::Mismatch => MISMATCH_NAME,
            _ => host.name,
        };
        let ecdsa = kind == Kind::Ecdsa;
        let mut params = leaf_params(san, not_before, not_after, ecdsa)?;
        if kind == Kind::WithScts {
            params.custom_extensions.push(sct_extension(now)?);
        }
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).context("loading the lab CA key")?;
        let issuer = Issuer::from_params(&self.ca_params, &ca_key);

        let cert = match kind {
            Kind::Ecdsa => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                    .context("generating a P-256 key")?;
                write(&key_file, &key.serialize_pem())?;
                params.signed_by(&key, &issuer)?
            }
            Kind::SelfSigned => {
                let key = KeyPair::from_pem(&read(&key_file)?).context("loading an RSA key")?;
                params.self_signed(&key)?
            }
            _ => params.signed_by(&RsaPublicKey::from_file(&key_file)?, &issuer)?,
        };
        let leaf_pem = cert.pem();
        let chain_pem = match kind {
            Kind::SelfSigned => leaf_pem.clone(),
            _ => format!("{leaf_pem}{}", self.ca_cert_pem),
        };
        let label = label(host);
        let files = LeafFiles {
            cert: self.dir.join(format!("{label}.crt")),
            chain: self.dir.join(format!("{label}.chain.pem")),
            key: key_file,
        };
        write(&files.cert, &leaf_pem)?;
        write(&files.chain, &chain_pem)?;
        Ok(files)
    }
}

impl LabCerts {
    /// A lab-CA leaf for `host` signed with SHA-1, by `openssl req` and
    /// `openssl x509 -req -sha1` (CA:FALSE, serverAuth, the host as SAN).
    fn sha1_leaf(&self, host: &Host, key_file: PathBuf) -> anyhow::Result<LeafFiles> {
        let label = label(host);
        let csr = self.dir.join(format!("{label}.csr"));
        let ext = self.dir.join(format!("{label}.ext"));
        let cert = self.dir.join(format!("{label}.crt"));
        write(
            &ext,
            &format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{}\n",
                host.name
            ),
        )?;
        let run = |args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .context("running openssl")?;
            anyhow::ensure!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        let subject = format!("/CN={}", host.name);
        run(&[
            "req".as_ref(),
            "-new".as_ref(),
            "-key".as_ref(),
            key_file.as_os_str(),
            "-subj".as_ref(),
            subject.as_ref(),
            "-out".as_ref(),
            csr.as_os_str(),
        ])?;
        let ca_key = self.dir.join("ca.key");
        run(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            self.ca_pem.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
            "-set_serial".as_ref(),
            "0x5a1".as_ref(),
            "-days".as_ref(),
            "30".as_ref(),
            "-sha1".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
        ])?;
        let leaf_pem = read(&cert)?;
        let files = LeafFiles {
            chain: self.dir.join(format!("{label}.chain.pem")),
            cert,
            key: key_file,
        };
        write(&files.chain, &format!("{leaf_pem}{}", self.ca_cert_pem))?;
        Ok(files)
    }
}

fn leaf_params(
    san: &str,
    not_before: SystemTime,
    not_after: SystemTime,
    ecdsa: bool,
) -> anyhow::Result<CertificateParams> {
    let mut params =
        CertificateParams::new(vec![san.to_string()]).with_context(|| format!("bad SAN {san}"))?;
    params.distinguished_name = dn(san);
    params.is_ca = IsCa::ExplicitNoCa; // says `CA:FALSE`
    params.key_usages = if ecdsa {
        vec![KeyUsagePurpose::DigitalSignature]
    } else {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, not_before, not_after)?;
    Ok(params)
}

/// Set the validity (rcgen keeps its `time` types to itself: count from the epoch).
pub(crate) fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> anyhow::Result<()> {
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + not_before.duration_since(UNIX_EPOCH)?;
    params.not_after = epoch + not_after.duration_since(UNIX_EPOCH)?;
    Ok(())
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mxscope lab");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The host name up to its first dot: `mx-valid`.
fn label(host: &Host) -> &'static str {
    host.name.split('.').next().unwrap_or(host.name)
}

fn key_path(dir: &Path, host: &Host) -> PathBuf {
    dir.join(format!("{}.key", label(host)))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn openssl() -> Command {
    let mut cmd = Command::new("openssl");
    cmd.stdin(Stdio::null());
    cmd
}

fn genrsa_cmd(bits: u32) -> Command {
    let mut cmd = openssl();
    cmd.args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
        .arg(format!("rsa_keygen_bits:{bits}"));
    cmd
}

/// Generate RSA keys (PKCS#8 PEM) into the given files, all at once.
fn genrsa_all(jobs: &[(PathBuf, u32)]) -> anyhow::Result<()> {
    let children = jobs
        .iter()
        .map(|(path, bits)| {
            let mut cmd = genrsa_cmd(*bits);
            cmd.arg("-out")
                .arg(path)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn()
                .context("running openssl genpkey (is openssl installed?)")
        })
        .collect::<anyhow::Result<Vec<Child>>>()?;
    let mut failed = None;
    for (child, (path, _)) in children.into_iter().zip(jobs) {
        let out = child
            .wait_with_output()
            .context("waiting for openssl genpkey")?;
        if !out.status.success() && failed.is_none() {
            failed = Some(format!(
                "openssl genpkey for {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    match failed {
        Some(msg) => bail!(msg),
        None => Ok(()),
    }
}

/// One fresh RSA key as PKCS#8 PEM.
pub(crate) fn genrsa_pem(bits: u32) -> anyhow::Result<String> {
    let out = genrsa_cmd(bits)
        .output()
        .context("running openssl genpkey (is openssl installed?)")?;
    if !out.status.success() {
        bail!(
            "openssl genpkey failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("openssl genpkey printed non-UTF-8")
}

/// The public half of an RSA key file, in the form rcgen signs over.
/// (`ring` cannot load RSA keys under 2048 bits, so rcgen's `KeyPair` is no
/// help for the small-key leaf.)
#[derive(Debug)]
struct RsaPublicKey {
    /// PKCS#1 `RSAPublicKey` DER: the SubjectPublicKeyInfo bit string.
    pkcs1: Vec<u8>,
}

impl RsaPublicKey {
    fn from_file(key: &Path) -> anyhow::Result<Self> {
        let out = openssl()
            .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
            .arg(key)
            .stderr(Stdio::piped())
            .output()
            .context("running openssl rsa")?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "openssl rsa -RSAPublicKey_out {} failed: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self { pkcs1: out.stdout })
    }
}

impl PublicKeyData for RsaPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.pkcs1
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}
