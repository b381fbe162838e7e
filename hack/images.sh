#!/usr/bin/env bash
# Builds chatcluster/chatserver and chatcluster/operator without any container registry, then
# smoke-tests them; then the images the real test node runs besides: chatcluster/rabbitmq (Debian's
# RabbitMQ), chatcluster/pause (the pod sandbox) and chatcluster/coredns; and saves all five into
# one archive for loading onto a node (node-images.tar in the cache directory). Every step is
# skipped when its result is already there.
#
# Why this way: our machines reach Debian's mirror and PyPI but no registry, so no base image can
# be pulled. The base is a debootstrapped Debian bookworm (`docker import`), the Python
# dependencies are a wheelhouse built here (bookworm's python3 is CPython 3.11, the ABI of the
# wheels), and the images build with --network=none from that wheelhouse alone.
#
# Changes the host: installs docker.io and debootstrap, and starts dockerd when no daemon answers.
# The base image's rootfs tarball and dockerd's log stay in the cache directory below.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CHATCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatcluster}/images
WHEEL_PYTHON=${WHEEL_PYTHON:-$ROOT/.venv/bin/python}
# The Dockerfiles copy the wheelhouse from here (.dockerignore sends nothing else); build/ is
# git-ignored.
WHEELS=$ROOT/build/wheels
BASE_PACKAGES=python3,python3-venv,ca-certificates
DAEMON_START_SECONDS=60

fail() { echo "images: $*" >&2; exit 1; }
step() { echo "images: $*" >&2; }

[ $# -eq 0 ] || { echo "usage: $0" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || fail "needs root (apt-get, dockerd, debootstrap)"
mkdir -p "$CACHE"

ensure_packages() {
  local need=()
  [ -x /usr/sbin/dockerd ] || need+=(docker.io)
  [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
  command -v curl >/dev/null || need+=(curl)
  [ ${#need[@]} -eq 0 ] && return
  step "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
}

# No systemd here, so no unit starts the daemon. The one started here leaves iptables and
# ip_forward alone (Docker would otherwise set the FORWARD policy to DROP, which breaks a
# Kubernetes node's pod traffic): builds and smoke runs need no route off the machine, and a
# port published on 127.0.0.1 goes through docker-proxy, not NAT.
ensure_daemon() {
  docker info >/dev/null 2>&1 && return
  local log=$CACHE/dockerd.log pid deadline=$((SECONDS + DAEMON_START_SECONDS))
  step "starting dockerd (log: $log)"
  setsid /usr/sbin/dockerd --iptables=false --ip-forward=false >"$log" 2>&1 </dev/null &
  pid=$!
  until docker info >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "dockerd exited; see $log"
    [ $SECONDS -lt $deadline ] || fail "dockerd did not answer within ${DAEMON_START_SECONDS}s; see $log"
    sleep 1
  done
}

# The first URI of an enabled deb source for bookworm itself, in one-line or deb822 format.
debian_mirror() {
  python3 - /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'EOF'
import sys
from pathlib import Path

def one_line(text):
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["deb"]:
            words = [w for w in words[1:] if not w.startswith("[")]
            if len(words) >= 2 and words[1] == "bookworm":
                yield words[0]

def deb822(text):
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if ("deb" in fields.get("types", []) and "bookworm" in fields.get("suites", [])
                and fields.get("enabled", ["yes"]) != ["no"]):
            yield from fields.get("uris", [])

for path in map(Path, sys.argv[1:]):
    if path.is_file():
        parse = deb822 if path.suffix == ".sources" else one_line
        for uri in parse(path.read_text()):
            print(uri)
            sys.exit(0)
sys.exit("no enabled 'deb ... bookworm' source in /etc/apt/sources.list(.d)")
EOF
}

# Named by a hash of its recipe (the package list and this function's own text), so any change
# to either builds a new base. The rootfs tarball is kept: after `docker image prune` the base is
# re-imported without debootstrap.
ensure_base() {
  local recipe="bookworm minbase $BASE_PACKAGES" hash mirror rootfs tarball
  hash=$({ echo "$BASE_PACKAGES"; declare -f ensure_base; } | sha256sum | cut -c1-12)
  BASE_IMAGE=chatcluster/base:bookworm-$hash
  tarball=$CACHE/base-bookworm-$hash.tar
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  if [ ! -s "$tarball" ]; then
    mirror=$(debian_mirror) || fail "cannot tell which Debian mirror apt uses"
    rootfs=$CACHE/rootfs-$hash
    step "debootstrap $recipe from $mirror"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$mirror" \
      >"$CACHE/debootstrap.log" 2>&1 || fail "debootstrap failed; see $CACHE/debootstrap.log"
    # Package indexes are stale the day after (images that add packages run apt-get update), the
    # downloaded .debs are installed, and nothing here reads man pages or translated messages.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
      "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  step "importing $BASE_IMAGE"
  docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
}

# The project's wheel and every runtime dependency, the operator extra included (the chatserver
# image installs only what `chatcluster` needs from it). A fixed SOURCE_DATE_EPOCH makes the
# project's wheel byte-identical for identical sources, so an unchanged tree hits the build cache.
build_wheelhouse() {
  "$WHEEL_PYTHON" -c 'import sys; sys.exit(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11))' \
    || fail "$WHEEL_PYTHON is not CPython 3.11, the ABI of bookworm's python3 (set WHEEL_PYTHON)"
  step "wheelhouse in $WHEELS"
  rm -rf "$WHEELS"
  SOURCE_DATE_EPOCH=315532800 "$WHEEL_PYTHON" -m pip wheel --quiet --disable-pip-version-check \
    --prefer-binary --wheel-dir "$WHEELS" "${ROOT}[operator]"
}

build_image() {
  local dockerfile=$1 tag=$2 context=${3:-$ROOT}
  step "building $tag"
  # The legacy builder: Debian's docker.io has no buildx, and it honours --network=none.
  DOCKER_BUILDKIT=0 docker build --quiet --network=none --build-arg "BASE=$BASE_IMAGE" \
    -f "$ROOT/deploy/$dockerfile" -t "$tag" "$context" >/dev/null
}

# Debian's rabbitmq-server (3.10: stream queues, the management, prometheus and stream plugins) in a
# debootstrapped root of its own, its user renumbered to the uid the operator's StatefulSet runs as
# (RABBITMQ_UID in chatoperator/builders/broker_statefulset.py). Named by a hash of this recipe, the
# uid and the entrypoint, like the base.
ensure_rabbitmq_image() {
  local hash mirror rootfs tarball build_tag old_uid old_gid
  hash=$({ declare -f ensure_rabbitmq_image; echo "$RABBITMQ_UID $DESCRIPTOR_FLOOR"
           cat "$ROOT/deploy/rabbitmq/entrypoint.sh"; } \
    | sha256sum | cut -c1-12)
  build_tag=chatcluster/rabbitmq-build:$hash
  tarball=$CACHE/rabbitmq-bookworm-$hash.tar
  if ! docker image inspect "$build_tag" >/dev/null 2>&1; then
    if [ ! -s "$tarball" ]; then
      mirror=$(debian_mirror) || fail "cannot tell which Debian mirror apt uses"
      rootfs=$CACHE/rootfs-rabbitmq-$hash
      step "debootstrap bookworm minbase rabbitmq-server from $mirror"
      rm -rf "$rootfs"
      debootstrap --variant=minbase --include=rabbitmq-server bookworm "$rootfs" "$mirror" \
        >"$CACHE/debootstrap-rabbitmq.log" 2>&1 \
        || fail "debootstrap failed; see $CACHE/debootstrap-rabbitmq.log"
      # Renumbered above the range of host accounts (policy scanners flag a uid or gid below
      # 10000: a container escaping as a host account's uid acts as that account). usermod and
      # groupmod renumber no file outside the home, so every file the package gave the old ids
      # (data, logs, /etc/rabbitmq) is handed over by number.
      old_uid=$(chroot "$rootfs" id -u rabbitmq)
      old_gid=$(chroot "$rootfs" id -g rabbitmq)
      chroot "$rootfs" groupmod --gid "$RABBITMQ_UID" rabbitmq
      chroot "$rootfs" usermod --uid "$RABBITMQ_UID" --gid "$RABBITMQ_UID" rabbitmq
      find "$rootfs" -xdev -uid "$old_uid" -exec chown -h "$RABBITMQ_UID" {} +
      find "$rootfs" -xdev -gid "$old_gid" -exec chgrp -h "$RABBITMQ_UID" {} +
      chroot "$rootfs" chown -R "$RABBITMQ_UID:$RABBITMQ_UID" /var/lib/rabbitmq /var/log/rabbitmq
      install -m 0755 "$ROOT/deploy/rabbitmq/entrypoint.sh" "$rootfs/usr/local/bin/chatcluster-rabbitmq"
      rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/doc/*
      tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
      mv "$tarball.tmp" "$tarball"
      rm -rf "$rootfs"
    fi
    step "importing $build_tag"
    docker import \
      --change 'ENV LANG=C.UTF-8 HOME=/var/lib/rabbitmq RABBITMQ_LOG_BASE=/var/lib/rabbitmq/log' \
      --change "ENV CHATCLUSTER_DESCRIPTOR_FLOOR=$DESCRIPTOR_FLOOR" \
      --change "USER $RABBITMQ_UID:$RABBITMQ_UID" \
      --change 'EXPOSE 5672 5552 15672 15692 4369 25672' \
      --change 'ENTRYPOINT ["/usr/local/bin/chatcluster-rabbitmq"]' \
      "$tarball" "$build_tag" >/dev/null
  fi
  docker tag "$build_tag" "$RABBITMQ_IMAGE"
}

build_pause_image() {
  local context=$ROOT/build/pause
  mkdir -p "$context"
  gcc -Os -Wall -Werror -static -o "$context/pause" "$ROOT/deploy/pause/pause.c"
  strip "$context/pause"
  build_image pause.Dockerfile "$PAUSE_IMAGE" "$context"
}

build_coredns_image() {
  local context=$ROOT/build/coredns binaries
  binaries=$(bash "$ROOT/hack/k8s-binaries.sh" --cached-only | tail -n 1) \
    || fail "no CoreDNS binary: run \`make k8s-binaries\` first"
  mkdir -p "$context"
  cp "$binaries/coredns" "$context/coredns"
  build_image coredns.Dockerfile "$COREDNS_IMAGE" "$context"
}

# One archive with every image a node runs, rewritten only when one of them changed.
save_node_images() {
  local archive=$CACHE/node-images.tar ids
  ids=$(docker image inspect --format '{{.Id}}' "${NODE_IMAGES[@]}")
  if [ -s "$archive" ] && [ "$ids" = "$(cat "$archive.ids" 2>/dev/null)" ]; then
    echo "$archive"
    return
  fi
  step "saving ${NODE_IMAGES[*]} to $archive"
  docker save "${NODE_IMAGES[@]}" >"$archive.tmp"
  mv "$archive.tmp" "$archive"
  echo "$ids" >"$archive.ids"
  echo "$archive"
}

SMOKE_CONTAINER=
cleanup() { [ -z "$SMOKE_CONTAINER" ] || docker rm -f "$SMOKE_CONTAINER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

smoke() {
  local uid address
  step "smoke test"
  docker run --rm --network=none "$SERVER_IMAGE" --help >/dev/null
  docker run --rm --network=none "$OPERATOR_IMAGE" --help >/dev/null
  docker run --rm --network=none "$OPERATOR_IMAGE" crd \
    | diff -q - "$ROOT/crds/chatclusters.chatcluster.dev.yaml" >/dev/null \
    || fail "$OPERATOR_IMAGE serves another CRD than crds/ (a stale wheelhouse?)"
  uid=$(docker run --rm --network=none --entrypoint id "$SERVER_IMAGE" -u)
  [ "$uid" = 10001 ] || fail "$SERVER_IMAGE runs as uid $uid, not 10001"
  # Published on loopback only; Docker picks the free port. (Docker warns that networking will not
  # work without ip_forward: it means routing off the machine, which this needs nowhere.)
  SMOKE_CONTAINER=$(docker run -d --rm -e HOST=0.0.0.0 -p 127.0.0.1::8080 "$SERVER_IMAGE" dev)
  address=$(docker port "$SMOKE_CONTAINER" 8080/tcp | head -n 1)
  # docker-proxy accepts before the server listens: retry every error, a bounded number of times,
  # silently (the failure below says what went wrong).
  curl -fs --retry 30 --retry-delay 1 --retry-all-errors --max-time 5 \
    "http://$address/healthz" >/dev/null || fail "no /healthz from $SERVER_IMAGE dev"
  curl -fsS --max-time 5 "http://$address/" | grep -i '<!doctype html' >/dev/null \
    || fail "/ of $SERVER_IMAGE dev is not the UI"
  docker stop "$SMOKE_CONTAINER" >/dev/null
  SMOKE_CONTAINER=
}

VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$ROOT/pyproject.toml")
SERVER_IMAGE=chatcluster/chatserver:$VERSION
OPERATOR_IMAGE=chatcluster/operator:$VERSION
RABBITMQ_IMAGE=chatcluster/rabbitmq:$VERSION
# The broker's user, read from the builder whose StatefulSet runs it, so the two cannot differ.
RABBITMQ_UID=$("$WHEEL_PYTHON" -c \
  'from chatoperator.builders.broker_statefulset import RABBITMQ_UID; print(RABBITMQ_UID)')
# The least descriptor limit it starts with, read from where the room cap counts on it.
DESCRIPTOR_FLOOR=$("$WHEEL_PYTHON" -c \
  'from chatoperator.builders.broker_capacity import DESCRIPTOR_FLOOR; print(DESCRIPTOR_FLOOR)')
PAUSE_IMAGE=chatcluster/pause:$VERSION
COREDNS_IMAGE=chatcluster/coredns:$VERSION
NODE_IMAGES=("$SERVER_IMAGE" "$OPERATOR_IMAGE" "$RABBITMQ_IMAGE" "$PAUSE_IMAGE" "$COREDNS_IMAGE")

ensure_packages
ensure_daemon
ensure_base
build_wheelhouse
build_image chatserver.Dockerfile "$SERVER_IMAGE"
build_image operator.Dockerfile "$OPERATOR_IMAGE"
smoke
ensure_rabbitmq_image
uid=$(docker run --rm --network=none --entrypoint id "$RABBITMQ_IMAGE" -u):$(
  docker run --rm --network=none --entrypoint id "$RABBITMQ_IMAGE" -g)
[ "$uid" = "$RABBITMQ_UID:$RABBITMQ_UID" ] \
  || fail "$RABBITMQ_IMAGE runs as $uid, not $RABBITMQ_UID:$RABBITMQ_UID"
build_pause_image
build_coredns_image
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
  | grep -E "^($(IFS='|'; echo "${NODE_IMAGES[*]}")|$BASE_IMAGE) " >&2
save_node_images
