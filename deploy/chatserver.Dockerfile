# The one chatserver image (frontend and backend pods run `chatserver frontend|backend`).
# `make images` (hack/images.sh) builds it; by hand, from the repository root:
#   .venv/bin/pip wheel --wheel-dir build/wheels '.[operator]'
#   docker build --network=none -f deploy/chatserver.Dockerfile -t chatcluster/chatserver:0.1.0 .
# It installs from the wheelhouse in build/wheels only, so the build needs no network. BASE is any
# local image with python3 (CPython 3.11, the wheels' ABI) and its venv module: the debootstrapped
# base `make images` imports, or the official image below where a registry is reachable.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS build
COPY build/wheels /wheels
# The runtime venv keeps no installer: pip and setuptools go once the wheels are in.
RUN python3 -m venv /opt/chatcluster \
    && /opt/chatcluster/bin/pip install --no-index --find-links /wheels --no-cache-dir \
       --disable-pip-version-check chatcluster \
    && /opt/chatcluster/bin/pip uninstall --yes --quiet pip setuptools

FROM ${BASE}
COPY --from=build /opt/chatcluster /opt/chatcluster
# A passwd entry for the uid: libraries that look up the user (the kubernetes client finds its
# home with getpwuid when HOME is unset) fail without one.
RUN useradd --system --uid 10001 --user-group --home-dir /tmp --no-create-home chatcluster
ENV PATH=/opt/chatcluster/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The uid the operator's pod securityContext runs as (chatoperator/builders/chatserver_pods.py).
USER 10001:10001
EXPOSE 3000 8080
ENTRYPOINT ["chatserver"]
CMD ["dev"]
