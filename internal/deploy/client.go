package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/source"
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

// ArgoCDClient is a MetadataClient over argocd-server's
// ApplicationService, the API of pkg/apiclient: RevisionMetadata for git
// sources, GetOCIMetadata for OCI sources. The server reads the app's
// source by its index from the app's current spec, finds the repository's
// credentials and asks the repo-server, which caches the answer; the
// token needs only get on the app. Over gRPC it keeps one connection,
// which reconnects by itself, and sends the token file's content read
// again at every call; over gRPC-web (cfg.GRPCWeb) it dials through
// pkg/apiclient, and dials again, reading the token file, after any error.
// It is safe for concurrent use; Close releases it.
type ArgoCDClient struct {
	cfg source.ArgoCDAPIConfig

	mu     sync.Mutex
	closer io.Closer // nil when not connected
	apps   applicationpkg.ApplicationServiceClient
}

// NewArgoCDClient returns a client for the Argo CD API server of cfg (its
// address, token or token file and TLS options; the rest is unused). It
// checks the token file and the CA file but does not connect.
func NewArgoCDClient(cfg source.ArgoCDAPIConfig) (*ArgoCDClient, error) {
	if cfg.Address == "" {
		return nil, errors.New("commit metadata: no argo cd api server address")
	}
	if _, err := (tokenCredentials{token: cfg.Token, file: cfg.TokenFile}).get(); err != nil {
		return nil, fmt.Errorf("commit metadata: %w", err)
	}
	c := &ArgoCDClient{cfg: cfg}
	if !cfg.GRPCWeb {
		conn, err := grpcConn(cfg)
		if err != nil {
			return nil, fmt.Errorf("commit metadata: %w", err)
		}
		c.closer, c.apps = conn, applicationpkg.NewApplicationServiceClient(conn)
	}
	return c, nil
}

// Close closes the connection.
func (c *ArgoCDClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drop(c.apps)
}

// drop closes the connection of apps, if it is still the current one;
// c.mu is held.
func (c *ArgoCDClient) drop(apps applicationpkg.ApplicationServiceClient) error {
	if c.closer == nil || c.apps != apps {
		return nil
	}
	err := c.closer.Close()
	c.closer, c.apps = nil, nil
	if err != nil {
		return fmt.Errorf("closing the argo cd api connection: %w", err)
	}
	return nil
}

// connection returns the ApplicationService client, dialling over
// gRPC-web if need be.
func (c *ArgoCDClient) connection(ctx context.Context) (applicationpkg.ApplicationServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil {
		if !c.cfg.GRPCWeb {
			return nil, errors.New("the argo cd api client is closed")
		}
		closer, apps, err := grpcWebConn(ctx, c.cfg)
		if err != nil {
			return nil, err
		}
		c.closer, c.apps = closer, apps
	}
	return c.apps, nil
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

// call asks the server.
func (c *ArgoCDClient) call(ctx context.Context, kind string, q *applicationpkg.RevisionMetadataQuery, src model.DeploymentSource) (*model.Commit, error) {
	apps, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	// No retries over gRPC: a failure is remembered for a while
	// (Config.FailedTTL), then the next lookup asks again.
	if kind == kindOCI {
		md, err := apps.GetOCIMetadata(ctx, q)
		if err != nil {
			c.failed(apps)
			return nil, fmt.Errorf("GetOCIMetadata: %w", err)
		}
		return commitFromOCI(src, md)
	}
	md, err := apps.RevisionMetadata(ctx, q)
	if err != nil {
		c.failed(apps)
		return nil, fmt.Errorf("RevisionMetadata: %w", err)
	}
	return commitFromRevision(src, md), nil
}

// failed drops a gRPC-web connection after an error: pkg/apiclient's
// connections do not reconnect, and the token may have been rotated.
func (c *ArgoCDClient) failed(apps applicationpkg.ApplicationServiceClient) {
	if !c.cfg.GRPCWeb {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.drop(apps)
}

// revisionQuery is the query for src's revision. argocd-server takes an
// absent source index for 0 (and an old server ignores the field), so it
// is set only for the further sources of a multi-source app. No version
// id: the server then picks the source from the app's current spec.
func revisionQuery(appNamespace, appName string, src model.DeploymentSource) *applicationpkg.RevisionMetadataQuery {
	q := &applicationpkg.RevisionMetadataQuery{Name: &appName, Revision: &src.Revision}
	if appNamespace != "" {
		q.AppNamespace = &appNamespace
	}
	if src.Index > 0 {
		i := int32(src.Index)
		q.SourceIndex = &i
	}
	return q
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
