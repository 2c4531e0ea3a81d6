// Package model holds the values that flow through crowsnest, from sources
// through the tracker to its subscribers: source events, an app's view (an
// Application with what the tracker derived for it), finished operations
// with their waves and resources, facts, workloads, and the deterministic
// trace and span ids of operations.
//
// It is the leaf of the project's import graph: it imports the standard
// library and Argo CD's types only, so every other package can share it
// without pulling in an output's dependencies.
package model
