# The one chatserver image (frontend and backend pods run `chatserver frontend|backend`).
# Build from the repository root:  docker build -f deploy/chatserver.Dockerfile -t chatcluster/chatserver:0.1.0 .
# BASE must already be in the local image store (see deploy/README.md): no registry is pulled.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS build
COPY pyproject.toml README.md /src/
COPY chatserver /src/chatserver
RUN python -m venv /opt/chatcluster && /opt/chatcluster/bin/pip install --no-cache-dir /src

FROM ${BASE}
COPY --from=build /opt/chatcluster /opt/chatcluster
ENV PATH=/opt/chatcluster/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The uid the operator's pod securityContext runs as (chatoperator/builders/chatserver_pods.py).
USER 10001:10001
EXPOSE 3000 8080
ENTRYPOINT ["chatserver"]
CMD ["dev"]
