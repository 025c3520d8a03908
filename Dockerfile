# The lameduck image: one static binary, nothing else. Use it as a stage to
# copy from:
#   COPY --from=ghcr.io/lameduck-dev/lameduck /usr/local/bin/lameduck /usr/local/bin/lameduck
#   ENTRYPOINT ["lameduck", "run", "--"]
# The binary is linked statically against musl, so it runs in any image:
# Debian, Alpine, distroless, scratch.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lameduck-cli \
 && install -D -m 0755 target/release/lameduck /out/lameduck

FROM scratch
COPY --from=build /out/lameduck /usr/local/bin/lameduck
ENTRYPOINT ["/usr/local/bin/lameduck"]
CMD ["--help"]
