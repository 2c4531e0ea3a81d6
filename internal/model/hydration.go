package model

import "time"

// Hydration is what crowsnest derived of an app's Source Hydrator (Argo CD
// v3.1+, spec.sourceHydrator): the controller renders the "dry" source into
// plain manifests, commits them to a branch (the hydrated SHA) and syncs
// from there. Nil for an app without a source hydrator.
type Hydration struct {
	// Phase is the current hydrate operation's: Hydrating, Failed or
	// Hydrated; empty before the first one.
	Phase string
	// DrySHA and HydratedSHA are those of the last successful hydration:
	// the dry commit that is rendered, and the commit that holds it.
	DrySHA, HydratedSHA string
	// LaggingSince is when the dry source last moved ahead of what is
	// hydrated: the start of the first of the unbroken run of hydrate
	// operations (Hydrating, or Failed and retried) that have not yet
	// succeeded. Zero while the last operation succeeded.
	LaggingSince time.Time
	// LastDuration is how long the last successful hydrate operation
	// crowsnest saw took (its start to its finish), if HasLastDuration.
	LastDuration    time.Duration
	HasLastDuration bool
	// Counts are the hydrate operations crowsnest saw finish, by result
	// (HydrationResults); those finished before its first look at the app
	// are not counted.
	Counts [NumHydrationResults]uint64
}

// HydrationPhases are the phases of a hydrate operation, in exposition
// order.
func HydrationPhases() []string { return []string{"Hydrating", "Failed", "Hydrated"} }

// NumHydrationResults is the number of HydrationResults.
const NumHydrationResults = 2

// HydrationResults are the ends of a hydrate operation, in exposition
// order.
func HydrationResults() [NumHydrationResults]string { return [...]string{"Hydrated", "Failed"} }
