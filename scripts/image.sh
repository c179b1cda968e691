#!/usr/bin/env bash
# Builds the container image with podman without pulling from a registry: the two bases of the
# Dockerfile are made from Debian's own packages (mmdebstrap, podman import) — a Rust base with
# Debian's rustc-web/cargo-web and cmake, and a runtime base — then `podman build` runs the
# Dockerfile on them, and the image is started once to answer /readyz. Slow (a release build in a
# container): `make image`, not part of `make test`. Needs root (or sudo), network to Debian and
# crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
for t in podman mmdebstrap runc; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" buildah >/dev/null
fi
# Machines without CAP_SYS_RESOURCE cannot raise rlimits: runc with explicit ones.
conf=$(mktemp)
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' >"$conf"
export CONTAINERS_CONF=$conf
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=http://deb.debian.org/debian
work=$(mktemp -d)
trap 'rm -rf "$work" "$conf"' EXIT
if ! $sudo podman image exists localhost/mediagate-base:bookworm; then
  $sudo mmdebstrap --variant=minbase --include=ca-certificates,passwd bookworm "$work/base.tar" "$sources"
  $sudo podman import "$work/base.tar" localhost/mediagate-base:bookworm
fi
if ! $sudo podman image exists localhost/mediagate-rust:bookworm; then
  $sudo mmdebstrap --variant=minbase \
    --include=ca-certificates,rustc-web,cargo-web,cmake,make,gcc,g++,binutils bookworm \
    "$work/rust.tar" "$sources"
  $sudo podman import "$work/rust.tar" localhost/mediagate-rust:bookworm
fi
# The host's CA bundle for the build's downloads (crates.io): a machine behind a TLS-inspecting
# proxy trusts its CA there, and the bases' own bundle would not.
certs=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && certs=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
$sudo podman build "${certs[@]}" \
  --build-arg RUST_IMAGE=localhost/mediagate-rust:bookworm \
  --build-arg BASE_IMAGE=localhost/mediagate-base:bookworm \
  --build-arg MEDIAGATE_COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  -t localhost/mediagate:local .
# Run it once: the gateway in front of its own emulator, on the host's loopback.
name=mediagate-image-check-$$
cat >"$work/check.toml" <<'TOML'
[server]
listen = "127.0.0.1:18480"
pid_file = "/tmp/mediagate.pid"
upgrade_sock = "/tmp/mediagate_upgrade.sock"
[admin]
listen = "127.0.0.1:18490"
[[upstream]]
url = "http://127.0.0.1:18481"
[emulator]
listen = "127.0.0.1:18481"
TOML
chmod 0644 "$work/check.toml"
$sudo podman run -d --rm --name "$name" --read-only --tmpfs /tmp --network host \
  -v "$work/check.toml:/etc/mediagate/check.toml:ro" \
  localhost/mediagate:local run -c /etc/mediagate/check.toml >/dev/null || true
ok=1
for _ in $(seq 1 50); do
  if $sudo podman exec "$name" /usr/local/bin/mediagate health --addr 127.0.0.1:18490 --path /readyz 2>/dev/null; then ok=0; break; fi
  sleep 0.2
done
$sudo podman logs "$name" 2>&1 | tail -5 || true
$sudo podman stop -t 2 "$name" >/dev/null 2>&1 || true
[ $ok -eq 0 ] && echo "image: localhost/mediagate:local builds and answers /readyz" || { echo "image: the container did not answer /readyz" >&2; exit 1; }
