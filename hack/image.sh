#!/usr/bin/env bash
# image.sh TAG: builds the crowsnest image with podman, as a release does:
# the static binary (CGO_ENABLED=0, -trimpath, version linked in; or
# $BINARY, one a release built) and the host's CA bundle in a build context
# of their own, then the Dockerfile's FROM scratch stage; no registry is
# needed. VERSION, REVISION, BRANCH and CREATED come from the environment
# (the Makefile sets them). Prints the image's size.
set -euo pipefail
tag=${1:?usage: image.sh TAG}
root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
version=${VERSION:-dev}
revision=${REVISION:-unknown}
created=${CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
vpkg=github.com/prometheus/common/version
if [ -n "${BINARY:-}" ]; then
	cp "$BINARY" "$ctx/crowsnest"
else
	(cd "$root" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X $vpkg.Version=$version -X $vpkg.Revision=$revision -X $vpkg.Branch=${BRANCH:-unknown} -X $vpkg.BuildUser=crowsnest -X $vpkg.BuildDate=$created" \
		-o "$ctx/crowsnest" ./cmd/exporter)
fi
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
podman build -q -t "$tag" -f "$root/Dockerfile" \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" "$ctx" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $((size / 1000000)) MB ($size bytes)"
