# syntax=docker/dockerfile:1
#
# winsink in a container: a DNS sinkhole for a Windows 11 lab.
#
#   docker build -t winsink .
#   docker run -d --name winsink -p 53:53/udp -p 53:53/tcp \
#       -v "$PWD/config:/etc/winsink/config:ro" winsink
#
# Mount the config DIRECTORY, not the file: editors save by renaming a new file over the
# old one, and a single-file bind mount keeps showing the old inode, so live reload would
# never see the edit. The image mirrors the repository layout (/etc/winsink/config,
# /etc/winsink/policies), so relative paths in the config work unchanged.
#
# Port 53 as a non-root user: the binary carries the file capability
# cap_net_bind_service and nothing else. Docker grants NET_BIND_SERVICE by default; with
# `--cap-drop ALL` add it back (`--cap-add NET_BIND_SERVICE`), otherwise the kernel
# refuses to start a binary whose file capabilities it cannot grant.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Everything the workspace manifest names; .dockerignore keeps target/ and the rest out.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
COPY config ./config
COPY policies ./policies
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p winsink-cli \
    && install -m 0755 target/release/winsink /usr/local/bin/winsink

FROM debian:bookworm-slim AS runtime
# dig answers the HEALTHCHECK; libcap2-bin only lends setcap and is removed in the same layer.
# Versions are not pinned: bookworm's security updates replace them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bind9-dnsutils libcap2-bin \
    && groupadd --system --gid 10053 winsink \
    && useradd --system --uid 10053 --gid winsink --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin winsink \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/winsink /usr/local/bin/winsink
COPY config /etc/winsink/config
COPY policies /etc/winsink/policies
RUN setcap cap_net_bind_service=+ep /usr/local/bin/winsink \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/*

USER 10053:10053
WORKDIR /etc/winsink
EXPOSE 53/udp 53/tcp

# The build's last step loads the shipped config exactly as `run` will: a broken config
# or catalog fails the image build, not the first start.
RUN ["winsink", "check", "--config", "/etc/winsink/config/winsink.toml"]

# A real DNS question. Any reply (even SERVFAIL from a dead upstream) proves winsink
# answers; dig exits 9 only when nothing came back. The name is in the default blocked
# area, so it is answered from the policy without touching the upstream.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["dig", "+time=3", "+tries=1", "-p", "53", "@127.0.0.1", "watson.events.data.microsoft.com", "A"]

ENTRYPOINT ["winsink"]
# IPv4 only: Docker networks have IPv6 off unless enabled, and binding [::] there fails.
# On an IPv6-enabled network add `--listen [::]:53`.
CMD ["run", "--config", "/etc/winsink/config/winsink.toml", "--listen", "0.0.0.0:53"]
