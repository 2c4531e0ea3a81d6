#!/usr/bin/env bash
# Installs or builds what the end-to-end tests need, once, outside the repo:
#   - Debian packages: etcd-server (etcd for kube-apiserver)
#   - kube-apiserver, built from the Go module proxy in its own module
#     (test/e2e/tools/kube-apiserver) and cached by version in $CROWSNEST_CACHE/bin.
# Re-runs find everything in place and take a second.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CROWSNEST_CACHE:-$HOME/.cache/crowsnest}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { printf 'tools: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		log "need root to run: $*"; return 1; fi
}

# Debian packages: binary → package.
declare -A packages=([/usr/bin/etcd]=etcd-server)
missing=()
for bin in "${!packages[@]}"; do
	[ -x "$bin" ] || missing+=("${packages[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kube-apiserver, keyed by the version its module pins.
kas_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' test/e2e/tools/kube-apiserver/go.mod)
kas="$BIN/kube-apiserver-$kas_version"
if [ ! -x "$kas" ]; then
	log "building kube-apiserver $kas_version (about 5 minutes on 2 cores, once)"
	(cd test/e2e/tools/kube-apiserver && go build -o "$kas.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
	mv "$kas.tmp" "$kas"
fi
ln -sf "$(basename "$kas")" "$BIN/kube-apiserver"
log "ready in $BIN"
