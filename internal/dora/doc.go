// Package dora turns the tracker's deployment notices into what DORA's
// keys are measured with: the change lead time (from the commit to the
// deployment's finish, and to the first Healthy after it), the time to
// recover from a failed change, and one record per deployment with its
// commit, as a fact (Loki, logs) and for record sinks (CloudEvents).
//
// The tracker never waits on it. Deployments takes notices and app views
// without blocking, into bounded queues (a full notice queue drops and
// counts), and one worker, Run, does the slow part: it asks argocd-server
// for the commit metadata of each deployed revision (RevisionMetadata, a
// read-only token suffices), each fetch bounded by a timeout and cached
// per repository and revision in a bounded LRU. To have the metadata at
// hand when a sync finishes, it prefetches the commits of the revisions an
// app starts comparing to, before the sync that deploys them.
//
// Without an Argo CD API server (a nil MetadataClient) there is no commit
// metadata: no lead time is observed, and records carry no commit.
// Recovery times are observed either way.
package dora
