//! The readable per-domain summary printed by `mxscope-worker probe`
//! without `--json`.

use std::io::{self, Write};

use mxscope_common::{snake, DomainRecord, KeyInfo, Outcome, TargetRecord, VersionSupport};

/// Write one domain, its MX hosts and what each address showed.
pub fn write_domain(out: &mut impl Write, record: &DomainRecord) -> io::Result<()> {
    let dns = &record.dns;
    let shown = match &record.domain_unicode {
        Some(unicode) => format!("{} ({unicode})", record.domain),
        None => record.domain.clone(),
    };
    let status = format!("{:?}", dns.status).to_lowercase();
    write!(out, "{shown}: dns {status}")?;
    if dns.null_mx {
        write!(out, ", null MX: accepts no mail")?;
    } else if dns.implicit_mx {
        write!(out, ", no MX: implicit MX from its own address")?;
    } else if !dns.mx.is_empty() || dns.error.is_none() {
        write!(out, ", {} MX", dns.mx.len())?;
    }
    if let Some(error) = &dns.error {
        write!(out, ": {error}")?;
    }
    writeln!(out)?;
    if let Some(security) = &record.security {
        let reason = security
            .dnssec_mx_reason
            .map(|r| format!(" ({})", r.as_str()))
            .unwrap_or_default();
        let mut line = format!(
            "  security: dnssec {}{reason}, mta-sts {}, tls-rpt {}",
            snake(&security.dnssec_mx),
            snake(&security.mta_sts.verdict),
            snake(&security.tls_rpt.verdict)
        );
        if let Some(detail) = &security.mta_sts.detail {
            line.push_str(&format!(" ({detail})"));
        }
        writeln!(out, "{line}")?;
    }
    for anomaly in &dns.anomalies {
        writeln!(
            out,
            "  dns anomaly: {}",
            serde_json::to_string(anomaly).unwrap_or_default()
        )?;
    }
    for mx in &dns.mx {
        writeln!(out, "  {:>5} {}", mx.preference, mx.exchange)?;
        if mx.addresses.is_empty() {
            writeln!(out, "        (no address)")?;
        }
        for ip in &mx.addresses {
            match record.targets.iter().find(|t| t.ip == *ip) {
                Some(target) => write_target(out, target, &mx.exchange)?,
                None => writeln!(out, "        {ip}: not probed")?,
            }
        }
    }
    writeln!(out)
}

fn write_target(out: &mut impl Write, target: &TargetRecord, mx_name: &str) -> io::Result<()> {
    write!(out, "        {} {}", target.ip, target.outcome)?;
    if target.outcome != Outcome::StarttlsOk {
        if let Some(detail) = &target.detail {
            let detail: String = detail.chars().take(120).collect();
            write!(out, " — {}", detail.replace('\n', " "))?;
        }
    }
    writeln!(out)?;
    if let Some(tls) = &target.tls {
        let group = match (&tls.group, tls.dh_bits) {
            (Some(group), _) => group.clone(),
            (None, Some(bits)) => format!("DH-{bits}"),
            (None, None) if tls.key_exchange == Some(mxscope_common::KeyExchange::Rsa) => {
                "RSA key exchange".to_string()
            }
            (None, None) => "?".to_string(),
        };
        let source = match tls.source {
            mxscope_common::TlsSource::FirstFlight => " (first flight: rustls could not finish)",
            _ => "",
        };
        writeln!(
            out,
            "          {} {} {group}{source}",
            tls.version, tls.cipher
        )?;
        let name_ok = target.name_matches(mx_name);
        let key = tls
            .chain
            .first()
            .map(|c| key_text(&c.key))
            .unwrap_or_default();
        writeln!(
            out,
            "          certificate {}, name {}, key {key}",
            tls.verification.as_str(),
            if name_ok { "matches" } else { "does not match" },
        )?;
        let own = target
            .names
            .get(mx_name)
            .filter(|n| n.check == mxscope_common::NameCheck::OwnSession);
        match (own.and_then(|n| n.leaf_subject.as_ref()), tls.chain.first()) {
            (Some(subject), _) => writeln!(
                out,
                "          subject {subject} (this name's own certificate, by SNI)"
            )?,
            (None, Some(leaf)) => writeln!(
                out,
                "          subject {} (expires {})",
                leaf.subject, leaf.not_after
            )?,
            (None, None) => {}
        }
    }
    let p = &target.protocols;
    let versions = [
        ("ssl3", p.ssl3),
        ("tls1.0", p.tls1_0),
        ("tls1.1", p.tls1_1),
        ("tls1.2", p.tls1_2),
        ("tls1.3", p.tls1_3),
    ];
    if versions
        .iter()
        .any(|(_, s)| *s != VersionSupport::NotTested)
    {
        let text: Vec<String> = versions
            .iter()
            .map(|(name, support)| format!("{name} {}", support_text(*support)))
            .collect();
        writeln!(out, "          versions: {}", text.join(", "))?;
    }
    if let Some(depth) = &target.tls_depth {
        for (version, v) in &depth.versions {
            let classes: Vec<&str> = v.classes.iter().map(|c| c.name()).collect();
            let mut line = format!("          {version}: {}", classes.join(" "));
            if !v.accepted.is_empty() {
                line.push_str(&format!("; {} suites", v.accepted.len()));
            }
            if let Some(server) = v.server_preference {
                line.push_str(if server {
                    ", server's order"
                } else {
                    ", client's order"
                });
            }
            if !v.groups.is_empty() {
                line.push_str(&format!("; groups {}", v.groups.join(" ")));
            }
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "          tls depth {}: {} sessions{}",
            depth.level,
            depth.sessions,
            if depth.not_measured.is_empty() {
                String::new()
            } else {
                format!(", not measured: {}", depth.not_measured.join(", "))
            }
        )?;
    }
    if !target.findings.is_empty() {
        let names: Vec<String> = target
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.id, snake(&f.severity)))
            .collect();
        writeln!(out, "          findings: {}", names.join(", "))?;
    }
    if let Some(dane) = target.dane.get(mx_name) {
        writeln!(out, "          dane {}", snake(&dane.verdict))?;
    }
    if let Some(ptr) = &target.ptr {
        let names = ptr.names.join(", ");
        writeln!(out, "          reverse dns {} {names}", snake(&ptr.verdict))?;
    }
    if !target.anomalies.is_empty() {
        let names: Vec<String> = target
            .anomalies
            .iter()
            .map(|a| {
                serde_json::to_string(a)
                    .unwrap_or_default()
                    .replace('"', "")
            })
            .collect();
        writeln!(out, "          anomalies: {}", names.join(", "))?;
    }
    Ok(())
}

fn key_text(key: &KeyInfo) -> String {
    match (&key.curve, key.bits) {
        (Some(curve), _) => format!("{} {curve}", key.key_type),
        (None, Some(bits)) => format!("{}-{bits}", key.key_type),
        (None, None) => key.key_type.clone(),
    }
}

fn support_text(support: VersionSupport) -> &'static str {
    match support {
        VersionSupport::Supported => "yes",
        VersionSupport::NotSupported => "no",
        VersionSupport::Error => "error",
        VersionSupport::NotTested => "-",
    }
}
