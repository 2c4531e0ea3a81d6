# crowsnest — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
GO        ?= go
# The tools cache: $CROWSNEST_CACHE if set, else ~/.cache/crowsnest.
CACHE     ?= $(or $(CROWSNEST_CACHE),$(HOME)/.cache/crowsnest)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VPKG      := github.com/prometheus/common/version
LDFLAGS   := -s -w -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) -X $(VPKG).BuildUser=crowsnest -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

export CROWSNEST_CACHE := $(CACHE)
# The Go toolchain every target builds with, whatever Go is installed: go.mod's
# toolchain line (go1.27.3). go.mod needs Go 1.27 (Argo CD v3.6's module does), and
# the go command fetches this toolchain from the module proxy once (into the module
# cache) when the local Go is older. The toolchain line alone is not enough: the Go
# distribution may set GOTOOLCHAIN=local in its go.env (this machine's does). The
# Dockerfile's builder image follows it by hand.
export GOTOOLCHAIN := $(shell awk '$$1=="toolchain" {print $$2}' go.mod)

.PHONY: all build demo test checks check unit fuzz rules chart e2e bench tools lint-tools clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o crowsnest ./cmd/exporter

## image: the container image with podman, as a release builds it (hack/image.sh: the static
## binary built outside the image, the CA bundle, FROM scratch; no registry needed)
IMAGE ?= localhost/crowsnest:$(VERSION)
.PHONY: image
image:
	VERSION=$(VERSION) REVISION=$(REVISION) BRANCH=$(BRANCH) hack/image.sh $(IMAGE)

## release-snapshot: the release, built here and published nowhere (docs/release.md): GoReleaser
## (.goreleaser.yaml) builds linux/amd64 and linux/arm64 binaries with version, revision and date
## linked in, their archives, sha256sums.txt and a CycloneDX SBOM per binary into dist/; the chart
## is packaged at the same version (dist/chart/) and the image built from the amd64 binary is
## tagged with it (localhost/crowsnest:VERSION)
RELEASE_VERSION := $(shell awk '$$1=="version:" {print $$2}' charts/exporter/Chart.yaml)
GORELEASER := $(CACHE)/bin/goreleaser
.PHONY: release-snapshot release-check release
release-snapshot: tools
	PATH="$(CACHE)/bin:$$PATH" RELEASE_VERSION=$(RELEASE_VERSION) REVISION=$(REVISION) BRANCH=$(BRANCH) SHORT_REVISION=$$(git rev-parse --short HEAD) \
		$(GORELEASER) release --snapshot --clean
	$(MAKE) release-artifacts

# The chart and the image of the version GoReleaser just built (dist/metadata.json).
.PHONY: release-artifacts
release-artifacts:
	@set -e; v=$$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' dist/metadata.json); \
	echo "chart and image at $$v"; \
	$(HELM) package charts/exporter --version "$$v" --app-version "$$v" -d dist/chart; \
	BINARY=$$(ls dist/crowsnest_linux_amd64*/crowsnest) VERSION="$$v" REVISION=$(REVISION) BRANCH=$(BRANCH) hack/image.sh localhost/crowsnest:$$v

## release-check: the release configuration is valid (goreleaser check), the chart's version and
## appVersion are one, and CHANGELOG.md has a section for what comes next; part of make test
release-check: tools
	$(GORELEASER) check
	@test "$(RELEASE_VERSION)" = "$$(awk '$$1=="appVersion:" {gsub(/"/, "", $$2); print $$2}' charts/exporter/Chart.yaml)" || \
		{ echo "charts/exporter/Chart.yaml: version $(RELEASE_VERSION) and appVersion differ; a release sets both"; exit 1; }
	@grep -q '^## \[Unreleased\]' CHANGELOG.md || grep -q '^## \[$(RELEASE_VERSION)\]' CHANGELOG.md || \
		{ echo "CHANGELOG.md: no [Unreleased] or [$(RELEASE_VERSION)] section"; exit 1; }

## release: publish the version tagged at HEAD (vX.Y.Z, equal to the chart's version), with
## GITHUB_TOKEN: GoReleaser's GitHub release (binaries, archives, checksums, SBOMs, the chart)
release: release-check
	@test "$$(git describe --tags --exact-match 2>/dev/null)" = "v$(RELEASE_VERSION)" || \
		{ echo "HEAD is not tagged v$(RELEASE_VERSION) (charts/exporter/Chart.yaml's version)"; exit 1; }
	$(HELM) package charts/exporter -d build/chart
	PATH="$(CACHE)/bin:$$PATH" REVISION=$(REVISION) BRANCH=$(BRANCH) $(GORELEASER) release --clean

## demo: run crowsnest on its built-in demo recording; metrics on http://localhost:9829/metrics
demo:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/exporter --demo

## test: every check and test: formatting, vet, staticcheck, unit tests (race detector on),
## fuzz targets (briefly), alert rule tests, end-to-end tests
## On a cold machine the end-to-end servers (hack/tools.sh: about 15 minutes of builds on
## 2 cores, once) build beside check, unit and fuzz, which keep their order; a warm
## run finds them in $(CACHE) in a second. Then rules, chart and e2e, one after the other.
test:
	$(MAKE) -j2 checks tools
	$(MAKE) rules chart release-check e2e

## checks: check, unit and fuzz, in this order
checks:
	$(MAKE) check
	$(MAKE) unit
	$(MAKE) fuzz

## check: gofmt, go mod tidy, go vet and staticcheck, on the code and on the e2e tests.
## The linter is staticcheck (honnef.co/go/tools, version pinned in hack/lint-tools.sh)
## rather than golangci-lint: it is one module with five small dependencies (x/tools
## the largest) that builds in under a minute on 2 cores, while golangci-lint v2
## builds about two hundred modules, staticcheck among them; and its default linters
## are mostly staticcheck (unused included) and go vet, which check runs anyway.
## Checks: staticcheck's defaults (no staticcheck.conf).
STATICCHECK := $(CACHE)/bin/staticcheck
check: lint-tools
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-ed: $$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./test/e2e/...

## unit: the unit tests, with the race detector (it needs cgo, i.e. a C compiler)
unit:
	$(GO) test -race -count=1 ./...

## fuzz: each fuzz target for FUZZTIME (default 5s), one after the other (go test takes one
## -fuzz target per run). Seeds are in each package's testdata/fuzz/<FuzzName>/, where a
## run also writes what it finds to fail: fix the code and keep the input as a seed
FUZZTIME ?= 5s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzReplay$$' -fuzztime $(FUZZTIME) ./internal/collect/source/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) ./internal/collect/exposition/
	$(GO) test -run '^$$' -fuzz '^FuzzURL$$' -fuzztime $(FUZZTIME) ./internal/redact/

## rules: promtool checks the generated alert rules and runs their unit tests
## (alerts/ is rendered from internal/rules: go test ./internal/rules ./internal/pager -update)
rules: tools
	promtool check rules alerts/*.yaml
	promtool test rules alerts/tests/*.yaml

## chart: helm lint --strict (values.schema.json enforced: a value of the wrong type
## fails) and helm template of charts/exporter, with the defaults and with each values
## file of charts/exporter/ci/ (every option on; the argocd-api source), as
## prometheus-community charts keep theirs; the e2e tests apply them to a real API server
## and run the pods they render
HELM := $(CACHE)/bin/helm
CHART_ALL_ON := $(wildcard charts/exporter/ci/*-values.yaml)
chart: tools
	$(HELM) lint --strict charts/exporter
	$(HELM) template crowsnest charts/exporter --namespace observability >/dev/null
	@set -e; for f in $(CHART_ALL_ON); do \
		echo "$(HELM) lint --strict charts/exporter -f $$f"; $(HELM) lint --strict charts/exporter -f $$f; \
		echo "$(HELM) template crowsnest charts/exporter --namespace observability -f $$f"; \
		$(HELM) template crowsnest charts/exporter --namespace observability -f $$f >/dev/null; \
	done
	$(HELM) lint --strict charts/exporter --set mode=spoke
	$(HELM) template crowsnest charts/exporter --namespace observability --set mode=spoke >/dev/null
	@if $(HELM) lint --strict charts/exporter --set replicaCount=abc >/dev/null 2>&1; then \
		echo "values.schema.json does not reject replicaCount=abc"; exit 1; fi

## e2e: end-to-end tests against real etcd, kube-apiserver, Argo CD, Prometheus and Alertmanager
## (installed or built on the first run by hack/tools.sh, cached in $(CACHE))
e2e: tools
	$(GO) test -count=1 -tags e2e -timeout 30m ./test/e2e/...

## bench: scrape cost for 10,000 Applications in every encoding, tracker update, memory per
## app (decoded from Argo CD JSON), start-up of 2,000 apps from a TLS server, trace building
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/collect/... ./internal/trace/

## bench-scale: the real-server scale benchmark (docs/scale.md): a kube-apiserver holding
## 10,000 Applications of 50 resources (a tenth drifted, history full), crowsnest started
## against it; prints time to ready, RSS, scrape time per encoding and event-to-metric
## latency under 20 status patches/s, and each rule group's evaluation time in the real
## Prometheus scraping it as two replicas (CROWSNEST_SCALE_RULES=0 skips that), as Markdown tables (and writes them to
## $CROWSNEST_SCALE_REPORT if set). Not part of `make test`: some 7 minutes at 10,000 apps
## on 2 cores. CROWSNEST_SCALE_BIN=path measures that binary instead of this tree's;
## CROWSNEST_SCALE_COMPARE=path measures another after it on the same objects;
## CROWSNEST_SCALE_APPS, _RESOURCES, _HISTORY, _DRIFT, _WORKLOADS, _CHURN_RATE,
## _CHURN_DURATION and the rest are listed in test/e2e/scale_test.go.
BENCH_SCALE_TIMEOUT ?= 240m
.PHONY: bench-scale scale bench-spokes
bench-scale: tools
	CROWSNEST_SCALE=1 $(GO) test -count=1 -tags e2e -run '^TestScale$$' -timeout $(BENCH_SCALE_TIMEOUT) -v ./test/e2e/

## bench-spokes: the hub-and-spoke scale benchmark (docs/scale.md, "Several clusters"): a hub
## kube-apiserver with the Applications and one spoke kube-apiserver of 1,000 Deployments reached
## as N clusters (N cluster Secrets, N loopback addresses); crowsnest started with 0, 1, 5 and 20
## spokes; prints memory, goroutines, sockets and start-up per spoke as a Markdown table (and
## writes it to $(CROWSNEST_SCALE_REPORT) if set). Not part of `make test`: about an hour on
## 2 cores, mostly idle: each memory reading waits for two of the Go runtime's periodic GCs.
## CROWSNEST_SPOKES_WORKLOADS, _APPS, _COUNTS, _STARTS and the rest are listed in
## test/e2e/scale_spokes_test.go.
BENCH_SPOKES_TIMEOUT ?= 120m
bench-spokes: tools
	CROWSNEST_SCALE_SPOKES=1 $(GO) test -count=1 -tags e2e -run '^TestScaleSpokes$$' -timeout $(BENCH_SPOKES_TIMEOUT) -v ./test/e2e/

## scale: bench-scale on the fleet behind the README's Sizing section (30 resources, none
## drifted, 20,000 Deployments tracked to the apps), unless those variables are set
scale:
	CROWSNEST_SCALE_RESOURCES=$${CROWSNEST_SCALE_RESOURCES:-30} CROWSNEST_SCALE_DRIFT=$${CROWSNEST_SCALE_DRIFT:-0} \
	CROWSNEST_SCALE_WORKLOADS=$${CROWSNEST_SCALE_WORKLOADS:-20000} $(MAKE) bench-scale

tools:
	@bash hack/tools.sh

## lint-tools: staticcheck only, for make check (no root, no e2e builds)
lint-tools:
	@bash hack/lint-tools.sh

clean:
	rm -f crowsnest
