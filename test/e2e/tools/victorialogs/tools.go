//go:build tools

// Package tools pins the VictoriaLogs command (a log store that accepts
// Loki's push protocol and answers LogsQL queries) that the e2e harness
// builds.
package tools

import _ "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
