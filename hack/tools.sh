#!/usr/bin/env bash
# Installs or builds what the end-to-end tests need, once, outside the repo:
#   - Debian packages: etcd-server (etcd for kube-apiserver), redis-server
#     (Argo CD's cache), prometheus (and promtool), prometheus-alertmanager,
#     git, podman and runc (the image test)
#   - helm, goreleaser and cyclonedx-gomod (the release), installed from the
#     Go module proxy at fixed versions
#   - kube-apiserver, kubectl, argocd (application controller, repo server, API
#     server and CLI in one binary), jaeger (Jaeger v2: OTLP in, in-memory trace
#     store, query API) and victoria-logs (VictoriaLogs: Loki push in, LogsQL
#     out), each built from the Go module proxy in its own module under
#     test/e2e/tools/ and cached by version in $CROWSNEST_CACHE/bin.
# Re-runs find everything in place and take a second.
set -euo pipefail
# Build with go.mod's toolchain, as the Makefile does, when run on its own.
export GOTOOLCHAIN="${GOTOOLCHAIN:-$(awk '$1=="toolchain" {print $2}' "$(dirname "$0")/../go.mod")}"
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
declare -A packages=(
	[/usr/bin/etcd]=etcd-server
	[/usr/bin/redis-server]=redis-server
	[/usr/bin/prometheus]=prometheus
	[/usr/bin/promtool]=prometheus
	[/usr/bin/prometheus-alertmanager]=prometheus-alertmanager
	[/usr/bin/git]=git
	# TestImage builds and runs the image (FROM scratch: no registry); runc,
	# since crun fails here ("cgroups in hybrid mode not supported").
	[/usr/bin/podman]=podman
	[/usr/sbin/runc]=runc
)
missing=()
for bin in "${!packages[@]}"; do
	[ -x "$bin" ] || missing+=("${packages[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq
	# sort -u: prometheus provides two of the binaries.
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# build NAME MODULE_DIR REQUIRED_MODULE PACKAGE [VERSION_VAR [VALUE]]: builds
# PACKAGE in its tool module into $BIN/NAME-VERSION, VERSION being what the
# module requires; VERSION_VAR, if given, is the Go variable that is linked to
# VALUE, in which {version} stands for VERSION (default: VERSION without its v).
build() {
	local name=$1 dir=$2 module=$3 pkg=$4 versionvar=${5:-} value=${6:-} version out ldflags
	version=$(awk -v m="$module" '$1=="require" && $2==m {print $3}' "$dir/go.mod")
	out="$BIN/$name-$version"
	ldflags='-s -w'
	if [ -n "$versionvar" ]; then
		value=${value:-${version#v}}
		ldflags="$ldflags -X $versionvar=${value//\{version\}/$version}"
	fi
	if [ ! -x "$out" ]; then
		log "building $name $version (minutes on 2 cores, once)"
		(cd "$dir" && go build -ldflags="$ldflags" -o "$out.tmp" "$pkg")
		mv "$out.tmp" "$out"
	fi
	ln -sf "$(basename "$out")" "$BIN/$name"
}
build kube-apiserver test/e2e/tools/kube-apiserver k8s.io/kubernetes k8s.io/kubernetes/cmd/kube-apiserver
build kubectl test/e2e/tools/kube-apiserver k8s.io/kubernetes k8s.io/kubernetes/cmd/kubectl
# argocd v3 needs Go 1.27: the Makefile exports GOTOOLCHAIN. Without the linked
# version it reports v99.99.99+unknown.
build argocd test/e2e/tools/argocd github.com/argoproj/argo-cd/v3 github.com/argoproj/argo-cd/v3/cmd github.com/argoproj/argo-cd/v3/common.version
# Jaeger v2: module v1.76.0 is release v2.13.0 (CHANGELOG.md); Jaeger links
# the v2 tag, this links the module's version (`jaeger version` prints it).
# No UI assets (a placeholder page); the query API is complete. ~4 min on 2 cores.
build jaeger test/e2e/tools/jaeger github.com/jaegertracing/jaeger github.com/jaegertracing/jaeger/cmd/jaeger github.com/jaegertracing/jaeger/internal/version.latestVersion '{version}'
# VictoriaLogs, with a version in its Makefile's form (buildinfo's
# ShortVersion looks for the vX.Y.Z). Under 30 s.
build victoria-logs test/e2e/tools/victorialogs github.com/VictoriaMetrics/VictoriaLogs github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version 'victoria-logs-{version}'
# install NAME PACKAGE VERSION: go install PACKAGE@VERSION, outside any
# module (its own go.mod pins its dependencies), into $BIN/NAME-VERSION.
install() {
	local name=$1 pkg=$2 version=$3
	if [ ! -x "$BIN/$name-$version" ]; then
		log "building $name $version (minutes on 2 cores, once)"
		local tmp
		tmp=$(mktemp -d)
		GOBIN="$tmp" GOFLAGS=-ldflags=-s\ -w go install "$pkg@$version"
		mv "$tmp/$(basename "${pkg%/v[0-9]*}")" "$BIN/$name-$version"
		rm -rf "$tmp"
	fi
	ln -sf "$name-$version" "$BIN/$name"
}
# helm, for make chart.
install helm helm.sh/helm/v3/cmd/helm v3.22.0
# The release (make release-snapshot, release-check): GoReleaser v2 and the
# SBOM generator it runs.
install goreleaser github.com/goreleaser/goreleaser/v2 v2.17.0
install cyclonedx-gomod github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod v1.10.0
log "ready in $BIN"
