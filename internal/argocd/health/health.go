// Package health holds the health status codes Argo CD writes, with the
// names and values of gitops-engine's pkg/health, which crowsnest does not
// import (it drags in the Kubernetes tree).
package health

// HealthStatusCode is an app's or a resource's health.
type HealthStatusCode string

// The health status codes.
const (
	HealthStatusUnknown     HealthStatusCode = "Unknown"
	HealthStatusProgressing HealthStatusCode = "Progressing"
	HealthStatusHealthy     HealthStatusCode = "Healthy"
	HealthStatusSuspended   HealthStatusCode = "Suspended"
	HealthStatusDegraded    HealthStatusCode = "Degraded"
	HealthStatusMissing     HealthStatusCode = "Missing"
)
