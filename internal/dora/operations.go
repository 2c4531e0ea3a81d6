package dora

import "github.com/crowsnest/crowsnest/internal/model"

// OperationSubscriber receives finished operations (the tracker's
// operation subscriber).
type OperationSubscriber interface {
	Finished(op *model.Operation)
}

// Operations returns next decorated with the deployed commit: an operation
// that is a deployment, whose commit is already cached (usually thanks to
// the prefetch), reaches next as a shallow copy with Commit set (the
// commit lead time counts from, as for the record); any other operation
// reaches it as is. It never fetches and never blocks, and never modifies
// the published operation. This is how the sync's trace gets the author.
func (d *Deployments) Operations(next OperationSubscriber) OperationSubscriber {
	return &withCommit{d: d, next: next}
}

type withCommit struct {
	d    *Deployments
	next OperationSubscriber
}

// Finished implements OperationSubscriber.
func (w *withCommit) Finished(op *model.Operation) {
	if op.Deployment != nil && op.Commit == nil {
		c := w.d.commitOf(op.Deployment, func(src model.DeploymentSource) *model.Commit {
			return w.d.cache.commit(cacheKey{src.RepoURL, src.Revision})
		})
		if c != nil {
			cp := *op
			cp.Commit = c
			op = &cp
		}
	}
	w.next.Finished(op)
}
