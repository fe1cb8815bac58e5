# syntax=docker/dockerfile:1
# mcp-scout image: the daemon for config/k8s (or any container runtime).
#   docker build -t mcp-scout:0.1.0 .
# Build stage: the README's release build, with the locked dependency versions. The cache
# mounts keep the registry and target/ between builds (BuildKit).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/mcp-scout /out/mcp-scout

# Runtime: distroless, no shell, no package manager. The binary needs only glibc and
# libgcc_s (rustls, bundled SQLite), which the `cc` flavour carries, with CA certificates.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mcp-scout /usr/local/bin/mcp-scout
# The UID/GID the manifests run it as (config/k8s/base/daemonset.yaml: runAsUser 65532).
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mcp-scout"]
CMD ["daemon", "--config", "/etc/mcp-scout/config.yaml"]
