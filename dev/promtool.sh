#!/usr/bin/env bash
# Runs promtool with the given arguments (`dev/promtool.sh check metrics < scrape.txt`). promtool
# comes from Debian's `prometheus` package, unpacked into .tools/ without installing it, so no
# Prometheus server is ever started; the first run downloads it, later runs reuse it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
promtool="$tools/bin/promtool"

fail() {
  echo "dev/promtool.sh: $*" >&2
  exit 2
}

if [ ! -x "$promtool" ]; then
  command -v apt-get >/dev/null || fail "apt-get not found: promtool is taken from Debian's prometheus package"
  command -v dpkg-deb >/dev/null || fail "dpkg-deb not found"
  download="$tools/download"
  rm -rf "$download" && mkdir -p "$download"
  # apt drops privileges to _apt for downloads; the folder must let it write.
  chmod 777 "$download"
  if ! (cd "$download" && apt-get download -q prometheus >&2); then
    echo "dev/promtool.sh: apt-get download failed; refreshing the package lists once" >&2
    apt-get update -q >&2 || fail "apt-get update failed (are Debian's package servers reachable?)"
    (cd "$download" && apt-get download -q prometheus >&2) || fail "apt-get download prometheus failed"
  fi
  deb=$(find "$download" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)
  [ -n "$deb" ] || fail "apt-get download left no prometheus_*.deb in $download"
  dpkg-deb -x "$deb" "$download/root" || fail "dpkg-deb could not unpack $deb"
  [ -x "$download/root/usr/bin/promtool" ] || fail "$deb has no usr/bin/promtool"
  # Only promtool is kept, not the server; moved into place last, so an interrupted run leaves none.
  mkdir -p "$tools/bin"
  mv "$download/root/usr/bin/promtool" "$promtool"
  rm -rf "$download"
fi

exec "$promtool" "$@"
