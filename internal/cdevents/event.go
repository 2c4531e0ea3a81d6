package cdevents

import (
	"strings"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// CloudEvents and CDEvents identifiers of the events crowsnest sends.
const (
	// CloudEventsSpecVersion is the CloudEvents version of the envelope.
	CloudEventsSpecVersion = "1.0"
	// SpecVersion is the CDEvents specification version of the data.
	SpecVersion = "0.4.1"
	// TypeServiceDeployed is the CDEvent (and CloudEvent) type of a
	// succeeded deployment.
	TypeServiceDeployed = "dev.cdevents.service.deployed.0.2.0"
	// TypeServiceRolledBack is the type of a rollback: a successful
	// deployment back to revisions the app ran before.
	TypeServiceRolledBack = "dev.cdevents.service.rolledback.0.2.0"
	// ContentType is the Content-Type of each POST: the CloudEvents JSON
	// format, structured content mode.
	ContentType = "application/cloudevents+json"
	// customDataContentType says CDEvent.CustomData is JSON.
	customDataContentType = "application/json"
	// subjectType is the CDEvents subject type of both events.
	subjectType = "service"
)

// CloudEvent is a CloudEvents v1.0 event in the JSON format, as posted in
// structured content mode; its data is a CDEvent.
type CloudEvent struct {
	SpecVersion string `json:"specversion"`
	// ID is the CDEvent's context id; see NewEvent.
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type"`
	// Subject is the app, "<namespace>/<name>", the CDEvent's subject id.
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            *CDEvent  `json:"data"`
}

// CDEvent is a CDEvents v0.4 service.deployed or service.rolledback event.
type CDEvent struct {
	Context Context `json:"context"`
	Subject Subject `json:"subject"`
	// CustomData is crowsnest's own account of the deployment, JSON
	// (CustomDataContentType application/json).
	CustomData            *CustomData `json:"customData,omitempty"`
	CustomDataContentType string      `json:"customDataContentType,omitempty"`
}

// Context is a CDEvent's context.
type Context struct {
	Version   string    `json:"version"`
	ID        string    `json:"id"`
	Source    string    `json:"source"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
}

// Subject is the service a deployment changed: an Argo CD app.
type Subject struct {
	ID      string         `json:"id"`
	Source  string         `json:"source"`
	Type    string         `json:"type"`
	Content SubjectContent `json:"content"`
}

// SubjectContent is where the service runs and what it runs.
type SubjectContent struct {
	Environment Reference `json:"environment"`
	ArtifactID  string    `json:"artifactId"`
}

// Reference points at another CDEvents subject, here an environment.
type Reference struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"`
}

// CustomData is what crowsnest knows of a deployment beyond the CDEvent's
// own fields. Its names are those of the deployment_finished Loki event.
// Revision and PreviousRevision are a single-source app's, Revisions and
// PreviousRevisions a multi-source app's (one per source); the previous
// ones are absent on an app's first deployment. The commit fields and
// LeadTimeSeconds are present only when crowsnest learned the commit from
// Argo CD (see model.DeploymentRecord).
type CustomData struct {
	Project           string    `json:"project"`
	Env               string    `json:"env"`
	DestCluster       string    `json:"dest_cluster,omitempty"` // the cluster deployed to (model.AppView.Dest)
	Result            string    `json:"result"`
	Revision          string    `json:"revision,omitempty"`
	Revisions         []string  `json:"revisions,omitempty"`
	PreviousRevision  string    `json:"previous_revision,omitempty"`
	PreviousRevisions []string  `json:"previous_revisions,omitempty"`
	Initiator         string    `json:"initiator,omitempty"`
	StartedAt         time.Time `json:"started_at"`
	TraceID           string    `json:"trace_id"`

	Author           string     `json:"author,omitempty"`
	CommitSHA        string     `json:"commit_sha,omitempty"`
	CommitRepo       string     `json:"commit_repo,omitempty"`
	CommitTime       *time.Time `json:"commit_time,omitempty"`
	CommitSubject    string     `json:"commit_subject,omitempty"`
	CommitReferenced *bool      `json:"commit_referenced,omitempty"`
	// LeadTimeSeconds is from the commit's time to the deployment's
	// finish, with the commit's time known.
	LeadTimeSeconds *float64 `json:"lead_time_seconds,omitempty"`
}

// EventType returns the CDEvent type of a deployment result, and false
// for a failed deployment (or an unknown result), which sends nothing.
func EventType(result string) (string, bool) {
	switch result {
	case model.DeploymentSucceeded:
		return TypeServiceDeployed, true
	case model.DeploymentRolledBack:
		return TypeServiceRolledBack, true
	}
	return "", false
}

// NewEvent returns the CloudEvent of r with source, and false when r
// sends none (a failed deployment, or no deployment at all).
//
// The event id is the deployment's trace id and the event type: stable
// per deployment, so the receiver can drop duplicates by source and id
// (CloudEvents' uniqueness rule) when a POST whose answer was lost is
// retried, or when another replica sends the same deployment around a
// leader change. Its time (and the CDEvent's timestamp) is the
// deployment's finish, Argo CD's finishedAt.
func NewEvent(r *model.DeploymentRecord, source string) (*CloudEvent, bool) {
	if r == nil || r.Deployment == nil {
		return nil, false
	}
	d := r.Deployment
	typ, ok := EventType(d.Result)
	if !ok {
		return nil, false
	}
	key := d.TraceID
	if key == "" { // not expected; still stable per deployment
		key = d.UID + "@" + d.FinishedAt.UTC().Format(time.RFC3339Nano)
	}
	id := key + "-" + typ
	at := d.FinishedAt.UTC()
	app := d.Namespace + "/" + d.Name
	return &CloudEvent{
		SpecVersion:     CloudEventsSpecVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Subject:         app,
		Time:            at,
		DataContentType: "application/json",
		Data: &CDEvent{
			Context: Context{Version: SpecVersion, ID: id, Source: source, Type: typ, Timestamp: at},
			Subject: Subject{
				ID:     app,
				Source: source,
				Type:   subjectType,
				Content: SubjectContent{
					Environment: Reference{ID: d.Env, Source: source},
					ArtifactID:  ArtifactID(d),
				},
			},
			CustomData:            customData(r),
			CustomDataContentType: customDataContentType,
		},
	}, true
}

// customData is r's CustomData.
func customData(r *model.DeploymentRecord) *CustomData {
	d := r.Deployment
	cd := &CustomData{
		Project:           d.Project,
		Env:               d.Env,
		DestCluster:       d.Dest,
		Result:            d.Result,
		Revision:          d.Revision,
		Revisions:         d.Revisions,
		PreviousRevision:  d.PreviousRevision,
		PreviousRevisions: d.PreviousRevisions,
		Initiator:         d.Initiator,
		StartedAt:         d.StartedAt.UTC(),
		TraceID:           d.TraceID,
	}
	if c := r.Commit; c != nil {
		cd.Author = c.Author
		cd.CommitSHA = c.SHA
		cd.CommitRepo = c.RepoURL
		cd.CommitSubject = c.Subject
		referenced := c.Referenced
		cd.CommitReferenced = &referenced
		if !c.Date.IsZero() {
			t := c.Date.UTC()
			cd.CommitTime = &t
			lead := r.LeadTime.Seconds()
			cd.LeadTimeSeconds = &lead
		}
	}
	return cd
}

// ArtifactID is the CDEvent artifactId of deployment d, a package URL
// (purl, which CDEvents requires of artifact ids) naming what d put in the
// environment: the app's manifests at the revision(s) deployed,
// pkg:generic/<namespace>/<name>@<revision>. Argo CD deploys rendered
// manifests, not one package of a purl type, hence "generic"; the app's
// namespace is the purl namespace since app names are unique only within
// theirs (apps in any namespace); the version is the deployed revision
// (a multi-source app's revisions, comma-separated), so two deployments of
// one revision name the same artifact and a rollback names the one it
// went back to. Components are percent-encoded as the purl spec asks (a
// revision may hold ':' or '/', a Helm chart's '+'). A revision-less
// deployment (not expected) has no version.
func ArtifactID(d *model.Deployment) string {
	var b strings.Builder
	b.WriteString("pkg:generic/")
	if d.Namespace != "" {
		b.WriteString(purlEscape(d.Namespace))
		b.WriteByte('/')
	}
	b.WriteString(purlEscape(d.Name))
	if rev := d.RevisionText(); rev != "" {
		b.WriteByte('@')
		b.WriteString(purlEscape(rev))
	}
	return b.String()
}

// purlEscape percent-encodes s for a purl component: every byte but
// ASCII letters, digits and ".-_~" (RFC 3986 unreserved characters).
func purlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
