//go:build tools

// Package tools pins the Jaeger v2 command (an OpenTelemetry Collector
// distribution with in-memory trace storage and Jaeger's query API) that the
// e2e harness builds.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
