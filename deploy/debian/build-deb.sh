#!/usr/bin/env bash
# Build the Debian package of mxscope from binaries already built:
#
#   cargo build --release --locked --workspace --bins
#   deploy/debian/build-deb.sh [PROFILE] [OUT_DIR]     # PROFILE: release (default), debug
#   dpkg -i target/debian/mxscope_0.1.0_amd64.deb
#
# What it holds: /usr/bin/mxscope and /usr/bin/mxscope-worker; the systemd
# units (mxscope-coordinator.service, mxscope-worker@.service; nothing is
# enabled or started on install); example configs as conffiles
# (/etc/mxscope/mxscope.toml, /etc/mxscope/worker.toml); man pages and bash,
# zsh and fish completions generated from the clap definitions by the
# binaries themselves; a `mxscope` system user made by postinst (its home,
# /var/lib/mxscope, is the coordinator's data directory).
# Needs dpkg-deb and gzip (Debian's dpkg and gzip packages).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=${1:-release}
out=${2:-$root/target/debian}
bin=$root/target/$profile
for b in mxscope mxscope-worker; do
  if [ ! -x "$bin/$b" ]; then
    flag=""; [ "$profile" = release ] && flag=" --release"
    echo "build-deb: $bin/$b is missing: run cargo build --locked --workspace --bins$flag" >&2
    exit 2
  fi
done
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/mxscope

install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/mxscope" \
  "$pkg/usr/share/man/man1" "$pkg/usr/share/doc/mxscope" \
  "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d"
install -m 0755 "$bin/mxscope" "$bin/mxscope-worker" "$pkg/usr/bin/"
for unit in mxscope-coordinator.service mxscope-worker@.service; do
  sed 's|/usr/local/bin/|/usr/bin/|g' "$root/deploy/systemd/$unit" > "$pkg/lib/systemd/system/$unit"
  chmod 0644 "$pkg/lib/systemd/system/$unit"
done
install -m 0644 "$root/deploy/mxscope.toml" "$pkg/etc/mxscope/mxscope.toml"
install -m 0644 "$root/deploy/mxscope-worker.toml" "$pkg/etc/mxscope/worker.toml"
for b in mxscope mxscope-worker; do
  "$bin/$b" man "$pkg/usr/share/man/man1"
  "$bin/$b" completions bash > "$pkg/usr/share/bash-completion/completions/$b"
  "$bin/$b" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_$b"
  "$bin/$b" completions fish > "$pkg/usr/share/fish/vendor_completions.d/$b.fish"
done
gzip -9n "$pkg"/usr/share/man/man1/*.1
chmod 0644 "$pkg"/usr/share/man/man1/* "$pkg"/usr/share/*/*completion*/* 2>/dev/null || true
find "$pkg/usr/share" -type f -exec chmod 0644 {} +
install -m 0644 "$root/README.md" "$pkg/usr/share/doc/mxscope/README.md"
cat > "$pkg/usr/share/doc/mxscope/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mxscope
Source: https://example.invalid/mxscope

Files: *
Copyright: the mxscope developers
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

size=$(du -sk "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: mxscope
Version: $version
Architecture: $arch
Maintainer: mxscope developers <mxscope@example.invalid>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Homepage: https://example.invalid/mxscope
Description: measure mail transport security of domain populations
 mxscope resolves the MX of a list of domains and probes each mail
 exchanger's STARTTLS, TLS versions and suites, certificates, DNSSEC,
 DANE, MTA-STS, TLS-RPT and reverse DNS, from one or several vantage
 points, and reports the population's figures. This package holds the
 coordinator and command line (mxscope) and the worker (mxscope-worker),
 their systemd units (not enabled), example configs, man pages and shell
 completions.
CONTROL
printf '/etc/mxscope/mxscope.toml\n/etc/mxscope/worker.toml\n' > "$pkg/DEBIAN/conffiles"
cat > "$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# The service user; nothing is enabled or started here.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd mxscope >/dev/null; then
    adduser --system --group --home /var/lib/mxscope --no-create-home \
      --gecos "mxscope scanner" mxscope >/dev/null
  fi
  install -d -o mxscope -g mxscope -m 0750 /var/lib/mxscope
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTINST
cat > "$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
# Purge removes the user; the data directory /var/lib/mxscope is kept.
set -e
if [ "$1" = purge ] && getent passwd mxscope >/dev/null; then
  deluser --system mxscope >/dev/null 2>&1 || true
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"
mkdir -p "$out"
deb=$out/mxscope_${version}_${arch}.deb
# A debug build (the test suite's) is large: compress it fast.
compress=(-Zxz)
[ "$profile" = release ] || compress=(-Zgzip -z1)
dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
