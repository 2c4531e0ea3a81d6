package loki

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/crowsnest/crowsnest/internal/redact"
)

// Defaults applied by DefaultConfig and, for zero fields, by New.
const (
	DefaultJob        = "crowsnest"
	DefaultBufferSize = 10000
	DefaultBatchSize  = 1000
	DefaultBatchBytes = 1 << 20
	DefaultBatchWait  = time.Second
	// DefaultFlushTimeout bounds the flush at shutdown.
	DefaultFlushTimeout = 10 * time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxRetries   = 10
	// DefaultMaxLineBytes caps a line at 64 KiB: a quarter of Loki's own
	// default max_line_size (256 KB), above which Loki rejects the line
	// (its max_line_size_truncate is off by default), and 1/16 of a batch
	// (DefaultBatchBytes), so one fact carrying a huge message (Argo CD's
	// operation and resource messages can quote whole manifests or
	// rendering errors) cannot be rejected nor crowd out a batch, while
	// every ordinary line (well under 1 KiB) is left whole.
	DefaultMaxLineBytes = 64 << 10
	// MinMaxLineBytes is the smallest line cap accepted: room for a
	// fact's name, time, app and trace id beside cut values.
	MinMaxLineBytes = 1 << 10
)

// Config configures a Shipper. Each field names the command-line flag it is
// meant to be bound to; validation errors name that flag.
type Config struct {
	// URL is Loki's base URL, e.g. http://loki:3100 (--loki.url). The push
	// path /loki/api/v1/push is appended unless the URL already ends with it.
	URL string
	// Tenant is sent as X-Scope-OrgID when not empty (--loki.tenant).
	Tenant string
	// Username and Password enable basic auth when Username is not empty
	// (--loki.username, --loki.password-file).
	Username, Password string
	// BearerToken is sent as "Authorization: Bearer" when not empty and no
	// Username is set (--loki.bearer-token-file).
	BearerToken string
	// Job is the value of the job stream label (--loki.job).
	Job string
	// BufferSize is how many events wait for shipping at most; beyond it
	// Send drops (--loki.buffer-size).
	BufferSize int
	// BatchSize is the most lines in one push (--loki.batch-size).
	BatchSize int
	// BatchBytes is the most line bytes in one push (--loki.batch-bytes).
	BatchBytes int
	// BatchWait is how long the first line of a batch waits for more
	// before the batch is pushed (--loki.batch-wait).
	BatchWait time.Duration
	// Timeout bounds each push attempt (--loki.timeout).
	Timeout time.Duration
	// MinBackoff is the first wait before retrying a push; it doubles up to
	// MaxBackoff (--loki.min-backoff, --loki.max-backoff).
	MinBackoff, MaxBackoff time.Duration
	// MaxLineBytes is the most bytes of one line (--loki.max-line-bytes);
	// longer lines have their largest field values cut, marked and counted
	// (see Shipper.Send).
	MaxLineBytes int
	// MaxRetries is how many times a failed push is retried after the first
	// attempt before its batch is dropped; 0 disables retries
	// (--loki.max-retries). Unlike the other fields, 0 is not replaced by
	// the default: use DefaultConfig.
	MaxRetries int
	// FlushTimeout bounds the flush when the shipper stops; default
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	// Gate reports whether this replica sends (leads); nil: always.
	Gate func() bool
}

// AuthKind names how the Shipper authenticates, for logs: "basic", "bearer",
// "url" (user information in the URL) or "none". It never returns a secret.
func (c Config) AuthKind() string {
	switch {
	case c.Username != "":
		return "basic"
	case c.BearerToken != "":
		return "bearer"
	case redact.URL(c.URL) != c.URL:
		return "url"
	}
	return "none"
}

// DefaultConfig returns a Config with every default set and no URL.
func DefaultConfig() Config {
	return Config{
		Job:          DefaultJob,
		BufferSize:   DefaultBufferSize,
		BatchSize:    DefaultBatchSize,
		BatchBytes:   DefaultBatchBytes,
		BatchWait:    DefaultBatchWait,
		Timeout:      DefaultTimeout,
		MinBackoff:   DefaultMinBackoff,
		MaxBackoff:   DefaultMaxBackoff,
		MaxRetries:   DefaultMaxRetries,
		FlushTimeout: DefaultFlushTimeout,

		MaxLineBytes: DefaultMaxLineBytes,
	}
}

// withDefaults fills zero fields (except MaxRetries) with defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Job == "" {
		c.Job = d.Job
	}
	if c.BufferSize == 0 {
		c.BufferSize = d.BufferSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.BatchWait == 0 {
		c.BatchWait = d.BatchWait
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = d.FlushTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = d.MaxLineBytes
	}
	return c
}

// Validate checks the configuration after defaults for zero fields are
// applied, and returns every problem found, each naming its flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("--loki.url: required"))
	} else if u, err := url.Parse(c.URL); err != nil {
		// url.Error quotes the URL, credentials and all.
		errs = append(errs, fmt.Errorf("--loki.url: %q is not a valid URL", redact.URL(c.URL)))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--loki.url: %q is not an absolute http(s) URL", redact.URL(c.URL)))
	}
	nonNegative := []struct {
		flag string
		neg  bool
		v    any
	}{
		{"--loki.buffer-size", c.BufferSize < 0, c.BufferSize},
		{"--loki.batch-size", c.BatchSize < 0, c.BatchSize},
		{"--loki.batch-bytes", c.BatchBytes < 0, c.BatchBytes},
		{"--loki.batch-wait", c.BatchWait < 0, c.BatchWait},
		{"--loki.timeout", c.Timeout < 0, c.Timeout},
		{"--loki.min-backoff", c.MinBackoff < 0, c.MinBackoff},
		{"--loki.max-backoff", c.MaxBackoff < 0, c.MaxBackoff},
		{"--loki.max-line-bytes", c.MaxLineBytes < 0, c.MaxLineBytes},
	}
	for _, p := range nonNegative {
		if p.neg {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", p.flag, p.v))
		}
	}
	if c.MaxLineBytes > 0 && c.MaxLineBytes < MinMaxLineBytes {
		errs = append(errs, fmt.Errorf("--loki.max-line-bytes: %d is too small for a fact's own fields, want at least %d", c.MaxLineBytes, MinMaxLineBytes))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("--loki.max-retries: must be >= 0, got %d", c.MaxRetries))
	}
	if c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("--loki.max-backoff: %s is less than --loki.min-backoff %s", c.MaxBackoff, c.MinBackoff))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("--loki.password-file: set without --loki.username"))
	}
	if c.BearerToken != "" && c.Username != "" {
		errs = append(errs, errors.New("--loki.bearer-token-file: set together with --loki.username; choose one"))
	}
	return errors.Join(errs...)
}
