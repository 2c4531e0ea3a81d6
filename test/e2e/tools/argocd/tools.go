//go:build tools

// Package tools pins the argocd command that the e2e harness builds.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
