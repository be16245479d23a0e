#
# winsink in a container: a DNS sinkhole for a Windows 11 lab.
#
#   docker build -t winsink .
#   docker run -d --name winsink -p 53:53/udp -p 53:53/tcp \
#       -v "$PWD/config:/etc/winsink/config:ro" winsink
#
# Mount the config DIRECTORY, not the file: editors save by renaming a new file over the
# old one, and a single-file bind mount keeps showing the old inode, so live reload would
# never see the edit. The config is found through $WINSINK_CONFIG, so `docker run winsink
# check` and `explain` need no flag either; the shipped one names the built-in catalog.
#
# Port 53 as a non-root user: the binary carries the file capability
# cap_net_bind_service and nothing else. Docker grants NET_BIND_SERVICE by default; with
# `--cap-drop ALL` add it back (`--cap-add NET_BIND_SERVICE`), otherwise the kernel
# refuses to start a binary whose file capabilities it cannot grant. Nothing is written
# inside the container (the query log goes to stdout), so `--read-only` works.
#
# tests/container.sh builds and runs this image in CI.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# One COPY of everything the workspace manifest names (.dockerignore lets nothing else
# in): with a copy-on-write-less storage driver (vfs) every layer is a full copy of the
# image, so the build stage keeps to two.
COPY . /src
# The registry and target folders are BuildKit caches: a rebuild after a source change
# compiles only the workspace's crates. No debug info, and the binary is stripped: the
# release profile keeps line tables for profiling on a host; the image needs none.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --release --locked \
        --manifest-path /src/Cargo.toml -p winsink-cli \
    && install -s -m 0755 /src/target/release/winsink /usr/local/bin/winsink

FROM debian:bookworm-slim AS runtime
COPY --from=build /usr/local/bin/winsink /usr/local/bin/winsink
COPY config /etc/winsink/config
# dig answers the HEALTHCHECK; ca-certificates are the roots that tls:// and https:// upstreams
# and https:// lists are verified against; libcap2-bin only lends setcap and is removed in the same
# layer. Versions are not pinned: bookworm's security updates replace them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bind9-dnsutils ca-certificates libcap2-bin \
    && setcap cap_net_bind_service=+ep /usr/local/bin/winsink \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
        /usr/share/doc /usr/share/man /usr/share/locale \
    && groupadd --system --gid 10053 winsink \
    && useradd --system --uid 10053 --gid winsink --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin winsink

USER 10053:10053
WORKDIR /etc/winsink
ENV WINSINK_CONFIG=/etc/winsink/config/winsink.toml \
    WINSINK_HEALTH_PORT=53
EXPOSE 53/udp 53/tcp

# The build's last step loads the shipped config exactly as `run` will: a broken config
# or catalog fails the image build, not the first start.
RUN ["winsink", "check"]

# A real DNS question on loopback. Any reply (even SERVFAIL from a dead upstream) proves
# winsink answers; dig exits 9 only when nothing came back. The name is in the default
# blocked area, so it is answered from the policy without touching the upstream. Listening
# on another port (`--listen 127.0.0.1:5300`)? Set WINSINK_HEALTH_PORT to it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["sh", "-c", "exec dig +time=3 +tries=1 -p \"$WINSINK_HEALTH_PORT\" @127.0.0.1 watson.events.data.microsoft.com A"]

ENTRYPOINT ["winsink"]
# IPv4 only: Docker networks have IPv6 off unless enabled, and binding [::] there fails.
# On an IPv6-enabled network add `--listen [::]:53`.
CMD ["run", "--listen", "0.0.0.0:53"]
