# One image with both binaries: `wash` (hosts run `wash host`) and
# `runtime-operator`. Build: docker build -t wash:dev .
FROM rust:1.95-bookworm AS build
WORKDIR /src
# protoc is not needed: runtime-proto compiles proto/ with protox.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY proto proto
COPY wit wit
RUN cargo build --release --locked -p wash -p runtime-operator \
 && strip target/release/wash target/release/runtime-operator

# glibc and libgcc only (wasmtime's JIT needs no more); runs as nonroot.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/wash /usr/local/bin/wash
COPY --from=build /src/target/release/runtime-operator /usr/local/bin/runtime-operator
USER nonroot
ENTRYPOINT ["/usr/local/bin/wash"]
