package clusters

import (
	"os"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenRefresh is how often the bearer token of a mounted cluster Secret is
// read again from its config file: a rotated token (a new ServiceAccount
// token written into the Secret; the kubelet updates the mounted files
// within a minute or so) is used without a restart. client-go reads a
// token file as often.
const TokenRefresh = time.Minute

// bearerSource hands out the bearer token of a cluster Secret's config
// file, read again once every is past. A read that fails, or a config
// without a token (a Secret being rewritten), keeps the last token; the
// failure shows as the cluster's probe failing if the old token stops
// working.
type bearerSource struct {
	path  string
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	token  string
	readAt time.Time
}

// newBearerSource starts with token, read from path at now.
func newBearerSource(path, token string, every time.Duration) *bearerSource {
	return &bearerSource{path: path, every: every, now: time.Now, token: token, readAt: time.Now()}
}

// Token implements oauth2.TokenSource.
func (b *bearerSource) Token() (*oauth2.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := b.now(); now.Sub(b.readAt) >= b.every {
		b.readAt = now
		if raw, err := os.ReadFile(b.path); err == nil {
			if cfg, err := parseConfig(raw); err == nil && cfg.BearerToken != "" {
				b.token = cfg.BearerToken
			}
		}
	}
	return &oauth2.Token{AccessToken: b.token, TokenType: "Bearer"}, nil
}
