# The operator image. Build from the repository root:
#   docker build -f deploy/operator.Dockerfile -t chatcluster/operator:0.1.0 .
# BASE must already be in the local image store (see deploy/README.md): no registry is pulled.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS build
COPY pyproject.toml README.md /src/
COPY chatserver /src/chatserver
COPY chatoperator /src/chatoperator
RUN python -m venv /opt/chatcluster && /opt/chatcluster/bin/pip install --no-cache-dir '/src[operator]'

FROM ${BASE}
COPY --from=build /opt/chatcluster /opt/chatcluster
ENV PATH=/opt/chatcluster/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["chatoperator"]
CMD ["run"]
