# syntax=docker/dockerfile:1
#
# mediagate's container image: built with the Rust toolchain, run on a small Debian base with CA
# certificates, as a non-root user, on a read-only root filesystem (mount a tmpfs on /tmp).
#
#   docker build -t mediagate .
#   docker run --rm -p 8080:8080 -p 9090:9090 -e MEDIAGATE_ADMIN_TOKEN=$(openssl rand -hex 16) \
#     --read-only --tmpfs /tmp mediagate
#
# The configuration is /etc/mediagate/mediagate.toml (deploy/container/mediagate.toml; mount
# another one over it); the access log is on standard output, diagnostics on standard error.
# Ports: 8080 players, 9090 admin (probes, metrics, the data-quality page), 8081 the emulator
# when one is configured. The base images are arguments, so that a registry mirror or locally
# built bases can be used (scripts/image.sh builds both from Debian packages with mmdebstrap).

ARG RUST_IMAGE=docker.io/library/rust:1.88-slim-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake make gcc g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The commit for `mediagate --version` (the build context has no .git).
ARG MEDIAGATE_COMMIT=unknown
ENV MEDIAGATE_COMMIT=${MEDIAGATE_COMMIT}
RUN cargo build --release --locked --bin mediagate \
 && strip target/release/mediagate

FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin mediagate
COPY --from=build /src/target/release/mediagate /usr/local/bin/mediagate
COPY deploy/container/mediagate.toml /etc/mediagate/mediagate.toml
USER 10001:10001
EXPOSE 8080 9090 8081
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/mediagate", "health", "--addr", "127.0.0.1:9090", "--path", "/readyz"]
ENTRYPOINT ["/usr/local/bin/mediagate"]
CMD ["run", "-c", "/etc/mediagate/mediagate.toml"]
