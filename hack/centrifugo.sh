#!/usr/bin/env bash
# Builds Centrifugo, the bench's third peer (bench/README.md), from the Go module proxy into a
# cache outside the repository, keyed by version, and does nothing when it is already there.
# GOPATH and GOCACHE live in the same cache so a rebuild (another version) reuses the modules.
#
# Prints the binary's path as its last line. The bench runs it before starting Centrifugo.
set -euo pipefail

CENTRIFUGO_VERSION=${CENTRIFUGO_VERSION:-v6.9.1}
CACHE_ROOT=${CHATCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatcluster}
GO_ROOT="$CACHE_ROOT/centrifugo"
OUT="$GO_ROOT/$CENTRIFUGO_VERSION"

if [ -x "$OUT/centrifugo" ]; then
  echo "$OUT/centrifugo"
  exit 0
fi

command -v go >/dev/null || { echo "centrifugo: go is required" >&2; exit 1; }
mkdir -p "$OUT"
start=$(date +%s)
# The version stamp is what Centrifugo's release builds set (else it warns of a development
# build); GOTOOLCHAIN=local: the Go on PATH, never a toolchain download.
CGO_ENABLED=0 GOTOOLCHAIN=local GOPATH="$GO_ROOT/gopath" GOCACHE="$GO_ROOT/gocache" GOBIN="$OUT" \
  go install -trimpath \
  -ldflags "-s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
  "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
echo "centrifugo: built in $(( $(date +%s) - start ))s" >&2
echo "$OUT/centrifugo"
