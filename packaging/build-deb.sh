#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (release build included) and checks its contents.
# Extra arguments go to `cargo deb`, e.g. --maintainer "Name <address>".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi

deb_dir="${CARGO_TARGET_DIR:-target}/debian"

# cargo deb prints the path of the package it wrote as its last line on stdout.
deb=$(cargo deb --output "$deb_dir" "$@" -- --locked | tail -n 1)
if [[ "$deb" != *.deb || ! -f "$deb" ]]; then
  echo "build-deb: cargo deb did not report a .deb under $deb_dir (got: '$deb')" >&2
  exit 1
fi

listing=$(dpkg -c "$deb")
echo "$deb:"
echo "$listing"

status=0
check_listed() { # description, extended regex matched against the path column
  if ! awk '{ print $6 }' <<<"$listing" | grep -Eqx "$2"; then
    echo "build-deb: $1 is missing from the package" >&2
    status=1
  fi
}
check_listed "the binary /usr/bin/hubgate" '\./usr/bin/hubgate'
check_listed "the unit hubgate.service" '\./(usr/)?lib/systemd/system/hubgate\.service'
check_listed "the configuration /etc/hubgate/config.toml" '\./etc/hubgate/config\.toml'

if ! dpkg-deb -I "$deb" conffiles 2>/dev/null | grep -qx '/etc/hubgate/config.toml'; then
  echo "build-deb: /etc/hubgate/config.toml is not a conffile" >&2
  status=1
fi

exit "$status"
