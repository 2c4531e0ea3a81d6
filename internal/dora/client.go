package dora

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crowsnest/crowsnest/internal/argocd/api"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// ErrUnsupported is wrapped by the errors of a MetadataClient for a source
// that has no commit it can tell of: a Helm chart, or an OCI artifact
// without a creation date. Unlike other errors it is not retried.
var ErrUnsupported = errors.New("no commit metadata for this kind of source")

// MetadataClient tells the commit a deployed revision points at.
type MetadataClient interface {
	// Commit returns the commit of src's revision of the app
	// appNamespace/appName: for a git source the revision's commit, or
	// the code commit its Argocd-reference-commit-* trailers point at
	// (Referenced); for an OCI source (oci://) the artifact, dated by its
	// creation. The error wraps ErrUnsupported for a source without one.
	// It returns when ctx ends, with ctx's error.
	Commit(ctx context.Context, appNamespace, appName string, src model.DeploymentSource) (*model.Commit, error)
}

// Source kinds, by where commit metadata comes from.
const (
	kindGit  = "git"
	kindOCI  = "oci"
	kindHelm = "helm"
)

// sourceKind tells a Helm chart (Chart set, whatever the repository), an
// OCI artifact (oci://) and a git repository apart.
func sourceKind(src model.DeploymentSource) string {
	switch {
	case src.Chart != "":
		return kindHelm
	case strings.HasPrefix(strings.ToLower(src.RepoURL), "oci://"):
		return kindOCI
	default:
		return kindGit
	}
}

// ArgoCDClient is a MetadataClient over argocd-server's REST API
// (internal/argocd/api): RevisionMetadata for git sources, GetOCIMetadata
// for OCI sources. The server reads the app's credentials and asks the
// repo-server, which caches the answer; the token needs only get on the
// app. Its HTTP client keeps its connections and reconnects by itself, and
// the token file is read again at every call. It is safe for concurrent
// use; Close releases it.
type ArgoCDClient struct {
	client *api.Client
}

// NewArgoCDClient returns a client for the Argo CD API server of cfg (its
// address, token or token file and TLS options). It checks the token file
// and the CA file but does not connect.
func NewArgoCDClient(cfg api.Config) (*ArgoCDClient, error) {
	if cfg.Address == "" {
		return nil, errors.New("commit metadata: no argo cd api server address")
	}
	c, err := api.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("commit metadata: %w", err)
	}
	return &ArgoCDClient{client: c}, nil
}

// Close releases the client's connections.
func (c *ArgoCDClient) Close() error {
	c.client.Close()
	return nil
}

// Commit implements MetadataClient.
func (c *ArgoCDClient) Commit(ctx context.Context, appNamespace, appName string, src model.DeploymentSource) (*model.Commit, error) {
	kind := sourceKind(src)
	if kind == kindHelm {
		return nil, fmt.Errorf("helm chart %s of %s: %w", src.Chart, src.RepoURL, ErrUnsupported)
	}
	commit, err := c.call(ctx, kind, revisionQuery(appNamespace, appName, src), src)
	if err != nil && !isUnsupported(err) {
		return nil, fmt.Errorf("commit metadata of %s at %s (app %s/%s): %w", src.RepoURL, src.Revision, appNamespace, appName, err)
	}
	return commit, err
}

// call asks the server. No retries: a failure is remembered for a while
// (Config.FailedTTL), then the next lookup asks again.
func (c *ArgoCDClient) call(ctx context.Context, kind string, q api.RevisionQuery, src model.DeploymentSource) (*model.Commit, error) {
	if kind == kindOCI {
		md, err := c.client.OCIMetadata(ctx, q)
		if err != nil {
			return nil, err
		}
		return commitFromOCI(src, md)
	}
	md, err := c.client.RevisionMetadata(ctx, q)
	if err != nil {
		return nil, err
	}
	return commitFromRevision(src, md), nil
}

// revisionQuery is the query for src's revision. argocd-server takes an
// absent source index for 0 (and an old server ignores the field), so it
// is set only for the further sources of a multi-source app. No version
// id: the server then picks the source from the app's current spec.
func revisionQuery(appNamespace, appName string, src model.DeploymentSource) api.RevisionQuery {
	return api.RevisionQuery{AppNamespace: appNamespace, AppName: appName, Revision: src.Revision, SourceIndex: src.Index}
}

// maxTextBytes caps the author and subject kept of a commit: they are
// cached, logged and sent, and commit messages are anyone's to write.
const maxTextBytes = 256

// commitFromRevision is the commit of a git revision's metadata: the code
// commit its first reference with a valid date points at (the
// Argocd-reference-commit-* trailers, parsed by the repo-server, whose
// dates are RFC 3339 author dates), else the revision's own commit, dated
// by its author date (the repo-server's git show %at, whole seconds).
func commitFromRevision(src model.DeploymentSource, md *v1alpha1.RevisionMetadata) *model.Commit {
	for _, ref := range md.References {
		rc := ref.Commit
		if rc == nil {
			continue
		}
		date, err := time.Parse(time.RFC3339, rc.Date)
		if err != nil {
			continue
		}
		return &model.Commit{
			SHA: rc.SHA, RepoURL: rc.RepoURL, Author: clip(rc.Author), Date: date,
			Subject: clip(rc.Subject), Referenced: true,
		}
	}
	c := &model.Commit{SHA: src.Revision, RepoURL: src.RepoURL, Author: clip(md.Author), Subject: clip(subject(md.Message))}
	if md.Date != nil {
		c.Date = md.Date.Time
	}
	return c
}

// commitFromOCI is an OCI artifact as a commit, dated by its
// org.opencontainers.image.created annotation: when the artifact was
// built, the closest Argo CD tells to a commit time.
func commitFromOCI(src model.DeploymentSource, md *v1alpha1.OCIMetadata) (*model.Commit, error) {
	if md.CreatedAt == "" {
		return nil, fmt.Errorf("oci artifact %s at %s has no creation date: %w", src.RepoURL, src.Revision, ErrUnsupported)
	}
	date, err := time.Parse(time.RFC3339, md.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("oci artifact %s at %s: creation date: %w: %w", src.RepoURL, src.Revision, err, ErrUnsupported)
	}
	return &model.Commit{
		SHA: src.Revision, RepoURL: src.RepoURL, Author: clip(md.Authors), Date: date,
		Subject: clip(md.Description),
	}, nil
}

// subject is the first line of a commit message.
func subject(message string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(message), "\n")
	return strings.TrimSpace(line)
}

// clip cuts s to maxTextBytes at a character boundary, valid UTF-8.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxTextBytes {
		return s
	}
	cut := maxTextBytes - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// isUnsupported reports whether err says the source has no commit.
func isUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }
