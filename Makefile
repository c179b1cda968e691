# mediagate — the two set-up commands of README's Quick start, and a few helpers.
#
#   make run    build (release) and run the gateway in front of the built-in emulator
#   make test   format check, lint, and every test (unit, integration, CLI)
#   make bench        the three benchmarks below
#   make bench-micro  criterion benchmarks of the pure request path (parse, validate, enrich)
#   make bench-sessions  the session tracker: CPU per event (criterion), memory per session at 1M
#   make bench-quality  the CPU the quarantine and per-player counts add to a refused call
#   make dist   a release tarball (binary, config, unit file, deploy/, docs/)
#   make image  the container image, from local Debian bases (podman, mmdebstrap)
#   make bench-load   mediagate and its floor against nginx, HAProxy and nginx + Lua under wrk,
#                     and the Redis session store against the memory one (bench/run.sh, ~20 min)
#   make fuzz         every fuzz target for 60 s (FUZZ_SECONDS=...); make fuzz-smoke: 10 s each

CARGO ?= cargo
CONFIG ?= config/mediagate.toml

FUZZ_SECONDS ?= 60

.PHONY: run test lint build dist image bench bench-micro bench-sessions bench-quality bench-load setup fuzz fuzz-smoke

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

run: build
	./target/release/mediagate run -c $(CONFIG)

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

test:
	@./scripts/setup.sh test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --workspace --all-targets --no-fail-fast; \
	else \
		$(CARGO) test --locked --workspace --all-targets --no-fail-fast; \
	fi
	./scripts/fuzz.sh 10

fuzz: setup
	./scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: setup
	./scripts/fuzz.sh 10

bench: bench-micro bench-sessions bench-quality bench-load

bench-micro: setup
	$(CARGO) bench --locked --bench request_path

bench-sessions: setup
	$(CARGO) bench --locked --bench sessions
	$(CARGO) run --release --locked --example session_memory

# A release tarball: the binary, the commented config, the unit file, the deployment examples
# and the docs, in target/dist/mediagate-<version>-<arch>.tar.gz.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DIST := mediagate-$(VERSION)-$(shell uname -m)
dist: build
	rm -rf target/dist/$(DIST) && mkdir -p target/dist/$(DIST)
	cp target/release/mediagate target/dist/$(DIST)/
	cp -r config docs deploy README.md CHANGELOG.md target/dist/$(DIST)/
	cp deploy/systemd/mediagate.service target/dist/$(DIST)/
	tar -C target/dist -czf target/dist/$(DIST).tar.gz $(DIST)
	@echo "target/dist/$(DIST).tar.gz"

# The container image, built with podman from local Debian bases (scripts/image.sh).
image:
	./scripts/image.sh

bench-quality: setup
	$(CARGO) bench --locked --bench quality

bench-load: build
	./bench/run.sh
