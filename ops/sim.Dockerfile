# cato-mq with the simulated engine: the default compose fleet, and every control-plane role
# (beat, provisioner, gateway, flower). No model, no torch: a small image.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 cato
WORKDIR /opt/cato
COPY pyproject.toml README.md ./
COPY cato_mq ./cato_mq
COPY workers ./workers
COPY beat ./beat
# a failed install fails the build: nothing after it hides its exit code
RUN pip install ".[gateway,monitor]" && cato-mq --version
USER cato
ENTRYPOINT ["cato-mq"]
