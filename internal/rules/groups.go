package rules

import "time"

// The alerts' rule groups. Prometheus evaluates the rules of one group one
// after another and the groups side by side, each at its own interval: a
// group's evaluation time is the sum of its rules', and a group slower
// than its interval misses evaluations. Each app alert reads its family of
// every app from every replica (at 10,000 apps and two replicas, 20,000
// series or more a rule, some 0.2 s on a 2-core machine: docs/scale.md),
// so one group of every alert took 4 s there. The alerts are grouped by
// what they watch, a few to a group, and the slow signals (a for of 10
// minutes or more) are evaluated every minute, which their for makes no
// later to fire and which leaves the CPU to the pages.
const (
	// GroupProd holds the pages: prod's failed syncs, degraded apps, live
	// drift, and its releases waiting.
	GroupProd = "crowsnest-prod"
	// GroupSync holds the other environments' failed syncs and endless
	// retries.
	GroupSync = "crowsnest-sync"
	// GroupDuration holds syncs much slower than usual.
	GroupDuration = "crowsnest-duration"
	// GroupHealth holds the other environments' degraded apps and
	// self-heal fights.
	GroupHealth = "crowsnest-health"
	// GroupDrift holds drift auto-sync did not heal.
	GroupDrift = "crowsnest-drift"
	// GroupStuck holds operations and deletions that hang and hydration
	// that lags.
	GroupStuck = "crowsnest-stuck"
	// GroupUnknown holds apps whose state Argo CD cannot tell.
	GroupUnknown = "crowsnest-unknown"
	// GroupReconcile holds apps Argo CD stopped comparing.
	GroupReconcile = "crowsnest-reconcile"
	// GroupPolicy holds the GitOps policy violations.
	GroupPolicy = "crowsnest-policy"
	// GroupSelf holds crowsnest's own health.
	GroupSelf = "crowsnest-self"
)

// slowInterval is the evaluation interval of the groups of slow signals.
const slowInterval = time.Minute

// AlertGroup is a rule group of alerts.
type AlertGroup struct {
	Name string
	// Interval is how often Prometheus evaluates the group; 0 for its
	// global evaluation_interval.
	Interval time.Duration
}

// AlertGroups are the alerts' rule groups, in the rule file's order
// (RecordingGroups follow them).
func AlertGroups() []AlertGroup {
	return []AlertGroup{
		{Name: GroupProd},
		{Name: GroupSync},
		{Name: GroupDuration},
		{Name: GroupHealth},
		{Name: GroupDrift, Interval: slowInterval},
		{Name: GroupStuck, Interval: slowInterval},
		{Name: GroupUnknown, Interval: slowInterval},
		{Name: GroupReconcile, Interval: slowInterval},
		{Name: GroupPolicy, Interval: slowInterval},
		{Name: GroupSelf},
	}
}
