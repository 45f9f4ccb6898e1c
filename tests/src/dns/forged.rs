//! `forged.test.`: a zone signed by the harness itself (hickory's signer,
//! one ECDSA P-256 key made at start), with signatures Knot would never
//! make. Knot serves it as it is (no signing); its DS goes into `test.`, so
//! the chain from the lab's root is sound down to the zone's DNSKEY and
//! every fault below is the zone's own. Nothing is committed: the zone is
//! written at test time with times around now.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_resolver::proto::dnssec::rdata::sig::SigInput;
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_resolver::proto::dnssec::{Algorithm, DigestType, SigningKey, TBS};
use hickory_resolver::proto::rr::rdata::{MX, NS, SOA};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, SerialNumber};

/// The zone.
pub const ZONE: &str = "forged.test.";
const TTL: u32 = 300;
const DAY: u32 = 86_400;

/// The names of `forged.test` and what they test (each has an MX RRset
/// naming `mx-valid.sec.test`, signed as said).
pub mod cases {
    /// Signed 30 days ago for 14 days: `bogus`, `signature_expired`.
    pub const EXPIRED: &str = "expired.forged.test";
    /// Signed from tomorrow on: `bogus`, `signature_not_yet_valid`.
    pub const FUTURE: &str = "future.forged.test";
    /// The RRSIG covers other data (preference 20): `bogus`, `signature_invalid`.
    pub const BADSIG: &str = "badsig.forged.test";
    /// No RRSIG at all: `bogus`, `rrsig_missing`.
    pub const NOSIG: &str = "nosig.forged.test";
    /// The RRSIG names a key tag the zone does not publish: `bogus`,
    /// `dnskey_missing`.
    pub const BADTAG: &str = "badtag.forged.test";
    /// The RRSIG's bytes verify with the zone's key, but it names the parent
    /// `test.` as its signer (RFC 4035 §5.3.1 wants the zone): `bogus`,
    /// `signature_invalid`.
    pub const WRONG_SIGNER: &str = "wrong-signer.forged.test";
    /// Does not exist, and the zone has no NSEC: the NXDOMAIN has no proof:
    /// `bogus`, `nsec_proof_failed`.
    pub const NO_DENIAL: &str = "nothing.forged.test";
    /// Every MX of the zone points here (a host of the signed `sec.test`).
    pub const MX_HOST: &str = "mx-valid.sec.test";
}

/// The zone file text and the DS line for the parent.
#[derive(Debug)]
pub struct Forged {
    pub zone_text: String,
    pub ds_line: String,
}

/// Make the key, sign the zone, and say the DS.
pub fn forge() -> anyhow::Result<Forged> {
    let alg = Algorithm::ECDSAP256SHA256;
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).context("generating the zone key")?;
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).context("loading the zone key")?;
    let dnskey = DNSKEY::from_key(&key.to_public_key().context("the public key")?);
    let tag = dnskey.calculate_key_tag().context("the key tag")?;
    let zone = name(ZONE)?;
    let now = u32::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(u32::MAX);
    let signer = Signer {
        key: &key,
        tag,
        zone: zone.clone(),
    };

    let mut text = format!("$ORIGIN {ZONE}\n$TTL {TTL}\n");
    // Knot serves RRSIGs only from a zone whose apex is signed.
    let ns = name("ns.test.")?;
    let soa = Record::from_rdata(
        zone.clone(),
        TTL,
        RData::SOA(SOA::new(
            ns.clone(),
            name("hostmaster.test.")?,
            1,
            3600,
            600,
            86400,
            60,
        )),
    );
    let ns = Record::from_rdata(zone.clone(), TTL, RData::NS(NS(ns)));
    for record in [&soa, &ns] {
        text.push_str(&line(record));
        text.push_str(&line(&signer.sign(
            record,
            record,
            tag,
            now - DAY,
            now + 14 * DAY,
        )?));
    }
    let key_record = Record::from_rdata(
        zone.clone(),
        TTL,
        RData::DNSSEC(DNSSECRData::DNSKEY(dnskey.clone())),
    );
    text.push_str(&line(&key_record));
    text.push_str(&line(&signer.sign(
        &key_record,
        &key_record,
        tag,
        now - DAY,
        now + 14 * DAY,
    )?));

    let mx = |owner: &str, pref: u16| -> anyhow::Result<Record> {
        Ok(Record::from_rdata(
            name(&format!("{owner}."))?,
            TTL,
            RData::MX(MX::new(pref, name(&format!("{}.", cases::MX_HOST))?)),
        ))
    };
    let ok = (now - DAY, now + 14 * DAY);
    for (owner, signed_over, key_tag, (inception, expiration)) in [
        (
            cases::EXPIRED,
            10,
            Some(tag),
            (now - 30 * DAY, now - 16 * DAY),
        ),
        (cases::FUTURE, 10, Some(tag), (now + DAY, now + 15 * DAY)),
        (cases::BADSIG, 20, Some(tag), ok),
        (cases::NOSIG, 10, None, ok),
        (cases::BADTAG, 10, Some(tag.wrapping_add(1)), ok),
    ] {
        let record = mx(owner, 10)?;
        text.push_str(&line(&record));
        if let Some(key_tag) = key_tag {
            let over = mx(owner, signed_over)?;
            text.push_str(&line(
                &signer.sign(&record, &over, key_tag, inception, expiration)?,
            ));
        }
    }

    let record = mx(cases::WRONG_SIGNER, 10)?;
    text.push_str(&line(&record));
    let parent = Signer {
        key: &key,
        tag,
        zone: name("test.")?,
    };
    text.push_str(&line(&parent.sign(&record, &record, tag, ok.0, ok.1)?));

    let digest = dnskey
        .to_digest(&zone, DigestType::SHA256)
        .context("the DS digest")?;
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let ds_line = format!("{ZONE} {TTL} IN DS {tag} 13 2 {hex}");
    Ok(Forged {
        zone_text: text,
        ds_line,
    })
}

struct Signer<'a> {
    key: &'a EcdsaSigningKey,
    tag: u16,
    zone: Name,
}

impl Signer<'_> {
    /// An RRSIG record for `record`'s RRset, computed over `over` (the
    /// same record, or other data to forge a bad signature), naming
    /// `key_tag`, valid from `inception` to `expiration`.
    fn sign(
        &self,
        record: &Record,
        over: &Record,
        key_tag: u16,
        inception: u32,
        expiration: u32,
    ) -> anyhow::Result<Record> {
        let mut input = SigInput {
            type_covered: record.record_type(),
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: record.name.num_labels(),
            original_ttl: TTL,
            sig_expiration: SerialNumber::from(expiration),
            sig_inception: SerialNumber::from(inception),
            key_tag: self.tag,
            signer_name: self.zone.clone(),
        };
        let tbs = TBS::from_input(&over.name, DNSClass::IN, &input, std::iter::once(over))
            .context("building the data to sign")?;
        let sig = self.key.sign(&tbs).context("signing")?;
        input.key_tag = key_tag;
        Ok(Record::from_rdata(
            record.name.clone(),
            TTL,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        ))
    }
}

fn name(text: &str) -> anyhow::Result<Name> {
    Name::from_ascii(text).with_context(|| format!("the name {text}"))
}

/// One zone-file line.
fn line(record: &Record) -> String {
    format!(
        "{} {} IN {} {}\n",
        record.name,
        record.ttl,
        record.record_type(),
        record.data
    )
}
