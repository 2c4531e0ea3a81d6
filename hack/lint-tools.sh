#!/usr/bin/env bash
# Installs the linter make check runs, once, outside the repo: staticcheck, built
# from the Go module proxy at a fixed version into $CROWSNEST_CACHE/bin (like helm
# in hack/tools.sh). Kept apart from hack/tools.sh so that make check needs neither
# root nor the Debian packages nor the end-to-end builds. Silent when in place.
set -euo pipefail
# Build with go.mod's toolchain, as the Makefile does, when run on its own.
export GOTOOLCHAIN="${GOTOOLCHAIN:-$(awk '$1=="toolchain" {print $2}' "$(dirname "$0")/../go.mod")}"
CACHE="${CROWSNEST_CACHE:-$HOME/.cache/crowsnest}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

STATICCHECK_VERSION=v0.8.2
# staticcheck type-checks with the go/types of the Go that built it, so the
# binary is cached per toolchain: one built by Go 1.26 refuses a go 1.27 module.
GO_VERSION=$(go env GOVERSION)
STATICCHECK_VERSION_GO="$STATICCHECK_VERSION-$GO_VERSION"
if [ ! -x "$BIN/staticcheck-$STATICCHECK_VERSION_GO" ]; then
	printf 'lint-tools: building staticcheck %s (a minute or two, once)\n' "$STATICCHECK_VERSION_GO" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	GOBIN="$tmp" GOFLAGS=-ldflags=-s\ -w go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	mv "$tmp/staticcheck" "$BIN/staticcheck-$STATICCHECK_VERSION_GO"
fi
ln -sf "staticcheck-$STATICCHECK_VERSION_GO" "$BIN/staticcheck"
