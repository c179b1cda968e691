# mediagate — the two set-up commands of README's Quick start, and a few helpers.
#
#   make run    build (release) and run the gateway in front of the built-in emulator
#   make test   format check, lint, and every test (unit, integration, CLI)
#   make bench        both benchmarks below
#   make bench-micro  criterion benchmarks of the pure request path (parse, validate, enrich)
#   make bench-load   mediagate against nginx and nginx + Lua under wrk (bench/run.sh, ~7 min)

CARGO ?= cargo
CONFIG ?= config/mediagate.toml

.PHONY: run test lint build bench bench-micro bench-load setup

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

bench: bench-micro bench-load

bench-micro: setup
	$(CARGO) bench --locked --bench request_path

bench-load: build
	./bench/run.sh
