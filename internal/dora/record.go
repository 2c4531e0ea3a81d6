package dora

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/redact"
)

// fact is the deployment_finished fact of rec, at the deployment's
// finish, with its attributes in a fixed order: result, revision,
// previous_revision, initiator, then what is known of the commit (author,
// commit_sha, commit_repo, commit_time, commit_subject, commit_referenced),
// and lead_time_seconds and lead_time_from when the lead time was measured.
func fact(rec *model.DeploymentRecord) *model.Fact {
	dep := rec.Deployment
	attrs := make([]any, 0, 20)
	attrs = append(attrs,
		"result", dep.Result,
		"revision", dep.RevisionText(),
		"previous_revision", model.JoinRevisions(dep.PreviousRevision, dep.PreviousRevisions),
		"initiator", dep.Initiator,
	)
	if dep.SourceChanged {
		// The sources' settings changed (Helm parameters, an image
		// written back): with the same revision, that is the change.
		attrs = append(attrs, "source_changed", true)
	}
	if c := rec.Commit; c != nil {
		if c.Author != "" {
			attrs = append(attrs, "author", c.Author)
		}
		if c.SHA != "" {
			attrs = append(attrs, "commit_sha", c.SHA)
		}
		if c.RepoURL != "" {
			attrs = append(attrs, "commit_repo", redact.URL(c.RepoURL))
		}
		if !c.Date.IsZero() {
			attrs = append(attrs, "commit_time", c.Date.UTC().Format(time.RFC3339))
		}
		if c.Subject != "" {
			attrs = append(attrs, "commit_subject", c.Subject)
		}
		attrs = append(attrs, "commit_referenced", c.Referenced)
	}
	if !dep.AwaitedSince.IsZero() {
		// How long it waited for the sync a person started (approval).
		attrs = append(attrs, "release_wait_seconds", max(dep.StartedAt.Sub(dep.AwaitedSince), 0).Seconds())
	}
	if dep.DrySHA != "" {
		attrs = append(attrs, "dry_sha", dep.DrySHA)
	}
	if rec.LeadFrom != "" {
		attrs = append(attrs, "lead_time_seconds", rec.LeadTime.Seconds(), "lead_time_from", rec.LeadFrom)
	} else if dep.LeadUnknown != "" {
		attrs = append(attrs, "lead_time_unknown", dep.LeadUnknown)
	}
	return &model.Fact{
		Name:    model.FactDeploymentFinished,
		Time:    dep.FinishedAt,
		App:     model.Key(dep.Namespace, dep.Name),
		Project: dep.Project,
		Env:     dep.Env,
		Dest:    dep.Dest,
		TraceID: dep.TraceID,
		Attrs:   attrs,
	}
}
