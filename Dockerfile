# The lameduck image: the static release binary and nothing else, for linux/amd64
# and linux/arm64. Use it as a stage to copy from:
#
#   COPY --from=ghcr.io/lameduck-dev/lameduck:0.1.0 /usr/local/bin/lameduck /usr/local/bin/lameduck
#   ENTRYPOINT ["lameduck", "run", "--"]
#
# or run it as is (`docker run --rm -v "$PWD:/src" ghcr.io/lameduck-dev/lameduck lint /src`).
#
# Built from the binaries of scripts/release.sh, the same bytes as the release
# assets and dist/SHA256SUMS, not compiled again here:
#
#   scripts/release.sh && docker build -t lameduck .
#   docker buildx build --platform linux/amd64,linux/arm64 -t lameduck .   # with both in dist/
FROM scratch

# Docker sets TARGETARCH (amd64, arm64) per platform of the build.
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z

LABEL org.opencontainers.image.title="lameduck" \
      org.opencontainers.image.description="Makes a Kubernetes pod leave without losing a request: container entrypoint, drain proxy, rehearsal and linter" \
      org.opencontainers.image.source="https://github.com/lameduck-dev/lameduck" \
      org.opencontainers.image.url="https://github.com/lameduck-dev/lameduck" \
      org.opencontainers.image.documentation="https://github.com/lameduck-dev/lameduck#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY dist/lameduck-linux-${TARGETARCH} /usr/local/bin/lameduck

# No passwd file in scratch: a numeric user, the one distroless calls nonroot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lameduck"]
CMD ["--help"]
