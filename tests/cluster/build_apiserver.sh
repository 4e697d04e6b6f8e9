#!/usr/bin/env bash
# Build the upstream kube-apiserver from Debian 12's `kubernetes` source package, for the preview and
# apply tests (tests/cluster/apiserver.py). Nothing comes from outside Debian: the source package
# carries the whole Kubernetes tree with its vendored Go modules (Debian builds only kubectl from it),
# Go is Debian's golang-go. Needs: golang-go, rsync, dpkg-dev (apt-get source), etcd-server to run
# it, and a deb-src line for bookworm (added when missing, as root). .ci/run installs the packages.
#
# One change to the source: the vendored modern-go/reflect2 1.0.1 crashes under Go 1.18 and later
# (its map iteration relies on runtime internals that changed), so it and json-iterator are
# replaced by Debian's own packages of the fixed releases (reflect2 1.0.2, json-iterator 1.1.12,
# the versions Kubernetes itself moved to in 1.24).
#
#   tests/cluster/build_apiserver.sh     # builds .kasbah/apiserver/kube-apiserver once (about 5 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=1.20.2
ORIG="kubernetes_1.20.5+really${VERSION}.orig.tar.gz"
ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
OUT=.kasbah/apiserver
BIN="$OUT/kube-apiserver"

if [[ -x "$BIN" && "$(cat "$OUT/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
  echo "kube-apiserver $VERSION already built: $BIN"
  exit 0
fi
for tool in go rsync apt-get dpkg-source; do
  command -v "$tool" >/dev/null || { echo "build_apiserver: needs $tool (Debian: golang-go rsync dpkg-dev)" >&2; exit 2; }
done
GOCODE=/usr/share/gocode/src/github.com
for dir in modern-go/reflect2 json-iterator/go; do
  [[ -d "$GOCODE/$dir" ]] || {
    echo "build_apiserver: needs $GOCODE/$dir (Debian: golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)" >&2
    exit 2
  }
done

mkdir -p "$OUT/src"
OUT=$(realpath "$OUT")
cd "$OUT/src"
if [[ ! -f "$ORIG" ]]; then
  if ! apt-get source --download-only "kubernetes/bookworm" >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "build_apiserver: apt has no deb-src for bookworm; add one (see /etc/apt/sources.list.d/) or run as root" >&2
      exit 2
    fi
    cat >/etc/apt/sources.list.d/kasbah-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
    apt-get source --download-only "kubernetes/bookworm" >/dev/null
  fi
fi
echo "$ORIG_SHA256  $ORIG" | sha256sum -c --quiet
rm -rf "kubernetes-$VERSION" gopath
tar xzf "$ORIG"
for dir in modern-go/reflect2 json-iterator/go; do
  rm -rf "kubernetes-$VERSION/vendor/github.com/$dir"
  cp -rL "$GOCODE/$dir" "kubernetes-$VERSION/vendor/github.com/$dir"
done

# Kubernetes 1.20 builds in GOPATH mode with its vendor/ tree; its generators write the OpenAPI
# definitions and conversions the release tarball does not carry.
mkdir -p gopath/src/k8s.io
ln -s "$PWD/kubernetes-$VERSION" gopath/src/k8s.io/kubernetes
export GOPATH="$PWD/gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
cd gopath/src/k8s.io/kubernetes
make generated_files >/dev/null
# the version the server reports (/version), set the way hack/lib/version.sh does for a release
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=v$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
done
go build -trimpath -o "$OUT/kube-apiserver" -ldflags "$ldflags" \
  ./cmd/kube-apiserver
echo "$VERSION" >"$OUT/VERSION"
rm -rf "$OUT/src"
echo "built kube-apiserver $VERSION: $OUT/kube-apiserver"
