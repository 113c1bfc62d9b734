# cato-mq on vLLM-Ascend for Ascend NPUs: the `npu` compose profile. The base image carries
# CANN (and NNAL); the host's driver is mounted at run time (compose.yaml, profile npu).
# Pick the CANN image matching your vllm-ascend release (vllm-ascend's installation guide).
ARG CANN_IMAGE=quay.io/ascend/cann:9.0.0-910b-ubuntu22.04-py3.11
FROM ${CANN_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 cato
WORKDIR /opt/cato
COPY pyproject.toml README.md ./
COPY cato_mq ./cato_mq
COPY workers ./workers
COPY beat ./beat
RUN pip install ".[gateway,monitor,npu]" && cato-mq --version
USER cato
ENTRYPOINT ["cato-mq"]
