#!/usr/bin/env bash
# Builds kube-score, pinned, from the Go module proxy into a cache outside the repository (as
# hack/k8s-binaries.sh does for the control plane: no GitHub release is reachable from our
# machines), and does nothing when it is already there. checkov is a Python dev dependency
# (pyproject.toml), installed by `make install`.
#
# Prints the directory holding kube-score as its last line.
set -euo pipefail

KUBE_SCORE_VERSION=${KUBE_SCORE_VERSION:-v1.20.0}
CACHE_ROOT=${CHATCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatcluster}
OUT="$CACHE_ROOT/tools/kube-score-$KUBE_SCORE_VERSION"

if [ ! -x "$OUT/kube-score" ]; then
  command -v go >/dev/null || { echo "scanners: go is required (Go >= 1.24)" >&2; exit 1; }
  mkdir -p "$OUT"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$OUT" go install -trimpath -ldflags "-s -w" \
    "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" >&2
fi
echo "$OUT"
