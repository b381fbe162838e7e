# The operator image. `make images` (hack/images.sh) builds it; by hand, from the repository root:
#   .venv/bin/pip wheel --wheel-dir build/wheels '.[operator]'
#   docker build --network=none -f deploy/operator.Dockerfile -t chatcluster/operator:0.1.0 .
# Same wheelhouse and BASE as deploy/chatserver.Dockerfile; this one adds the operator extra.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS build
COPY build/wheels /wheels
RUN python3 -m venv /opt/chatcluster \
    && /opt/chatcluster/bin/pip install --no-index --find-links /wheels --no-cache-dir \
       --disable-pip-version-check 'chatcluster[operator]' \
    && /opt/chatcluster/bin/pip uninstall --yes --quiet pip setuptools

FROM ${BASE}
COPY --from=build /opt/chatcluster /opt/chatcluster
# A passwd entry for the uid: libraries that look up the user (the kubernetes client finds its
# home with getpwuid when HOME is unset) fail without one.
RUN useradd --system --uid 10001 --user-group --home-dir /tmp --no-create-home chatcluster
ENV PATH=/opt/chatcluster/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The uid deploy/operator.yaml's securityContext runs as.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["chatoperator"]
CMD ["run"]
