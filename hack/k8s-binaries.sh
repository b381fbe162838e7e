#!/usr/bin/env bash
# Builds the test control plane's binaries from the Go module proxy into a cache outside the
# repository, keyed by version, and does nothing when they are already there.
#
# Why from source: no container registry, GitHub release or dl.k8s.io is reachable from our
# machines, so neither kind node images nor envtest tarballs can be fetched. The Go module proxy
# is reachable, and every binary below is a Go main package.
#
# Prints the cache directory as its last line. With --cached-only it never builds: it fails at
# once when the binaries are missing (the test fixtures use this rather than start a long build
# under a test timeout).
set -euo pipefail

cached_only=false
case "${1:-}" in
  "") ;;
  --cached-only) cached_only=true ;;
  *) echo "usage: $0 [--cached-only]" >&2; exit 2 ;;
esac

K8S_VERSION=${K8S_VERSION:-v1.33.13}
# etcd 3.5 rather than Debian's 3.4.23: kube-apiserver 1.33 needs >= 3.4.31 / 3.5.13 for
# watch-progress requests (consistent reads from its cache, watch-list); Debian's package also
# starts a system etcd on port 2379 when installed.
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
# kwok 0.7 still falls back to its built-in pod/node stages; 0.8 needs --config with stage files.
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
# Cluster DNS of the real node (NODE=real); its image is built by hack/images.sh.
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
# The real node's NetworkPolicy engine: kube-router with only its firewall (iptables + ipset).
KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}

CACHE_ROOT=${CHATCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatcluster}
OUT="$CACHE_ROOT/k8s/$K8S_VERSION-etcd$ETCD_VERSION-kwok$KWOK_VERSION-coredns$COREDNS_VERSION-kuberouter$KUBE_ROUTER_VERSION"
# kubelet, kube-proxy, coredns and kube-router make the real node; the rest is the control plane
# and kwok.
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy etcd kwok
          coredns kube-router)

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done
}

if have_all; then
  echo "$OUT"
  exit 0
fi
if $cached_only; then
  echo "k8s-binaries: not built yet in $OUT; run \`make k8s-binaries\` (a cold build takes minutes)" >&2
  exit 1
fi

command -v go >/dev/null || { echo "k8s-binaries: go is required (Go >= 1.24)" >&2; exit 1; }
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

build_kubernetes() {
  local staging="v0.${K8S_VERSION#v1.}" mod
  mkdir -p "$work/k8s" && cd "$work/k8s"
  go mod init local/k8sbinaries >/dev/null 2>&1
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging
  # paths, which only apply inside its own repository. Derive the replace list (and the go and
  # godebug lines that set GODEBUG defaults) from the go.mod the proxy serves for this exact
  # version, so it is never maintained by hand.
  mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  go mod edit -json "$mod" | STAGING="$staging" python3 -c '
import json, os, sys
m = json.load(sys.stdin)
for r in m.get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        old = r["Old"]["Path"]
        print("-replace=%s=%s@%s" % (old, old, os.environ["STAGING"]))
for g in m.get("Godebug") or []:
    print("-godebug=%s=%s" % (g["Key"], g["Value"]))
print("-go=%s" % m["Go"])
' | xargs go mod edit
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"

  local v=${K8S_VERSION#v} ldflags="-s -w" kv
  for kv in "gitVersion=$K8S_VERSION" "gitMajor=${v%%.*}" "gitMinor=$(cut -d. -f2 <<<"$v")" \
            gitTreeState=clean gitCommit=0000000000000000000000000000000000000000 \
            "buildDate=1970-01-01T00:00:00Z"; do
    ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy
}

build_etcd() {
  # etcd's server module replaces its sibling modules with relative paths, so `go install` refuses
  # it; a wrapper module that requires it builds the same main package.
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init local/etcdbinary >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  CGO_ENABLED=0 GOBIN="$OUT" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_coredns() {
  # Static: it runs as the only file of a FROM-scratch image.
  CGO_ENABLED=0 GOBIN="$OUT" go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION"
}

build_kube_router() {
  CGO_ENABLED=0 GOBIN="$OUT" go install -trimpath -ldflags "-s -w" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
}

start=$(date +%s)
[ -x "$OUT/etcd" ] || (build_etcd)
[ -x "$OUT/kwok" ] || (build_kwok)
[ -x "$OUT/coredns" ] || (build_coredns)
[ -x "$OUT/kube-router" ] || (build_kube_router)
[ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kubelet" ] && [ -x "$OUT/kube-proxy" ] || (build_kubernetes)
have_all || { echo "k8s-binaries: build incomplete in $OUT" >&2; exit 1; }
echo "k8s-binaries: built in $(( $(date +%s) - start ))s" >&2
"$OUT/kube-apiserver" --version >&2
echo "$OUT"
