# cato-mq on vLLM for NVIDIA GPUs: the `gpu` compose profile. The host needs the NVIDIA
# driver and the NVIDIA Container Toolkit; vLLM's wheel brings the CUDA runtime libraries.
# Mount your models and a pools file (CATO_POOLS_FILE) into the container.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 cato
WORKDIR /opt/cato
COPY pyproject.toml README.md ./
COPY cato_mq ./cato_mq
COPY workers ./workers
COPY beat ./beat
RUN pip install ".[gateway,monitor,gpu]" && cato-mq --version
USER cato
ENTRYPOINT ["cato-mq"]
