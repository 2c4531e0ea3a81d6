package cdevents

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crowsnest/crowsnest/internal/redact"
)

// Defaults applied by DefaultConfig and, for zero fields, by New.
const (
	// DefaultSource is the CloudEvents and CDEvents source of crowsnest's
	// events: a URI-reference naming the producer.
	DefaultSource     = "/crowsnest"
	DefaultBufferSize = 1000
	DefaultTimeout    = 10 * time.Second
	DefaultMaxRetries = 5
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// DefaultFlushTimeout bounds the flush at shutdown.
	DefaultFlushTimeout = 10 * time.Second
)

// Config configures a Sink. Each field names the command-line flag it is
// meant to be bound to; validation errors name that flag. Zero fields take
// their defaults.
type Config struct {
	// URL is the endpoint each event is POSTed to (--cloudevents.url):
	// an absolute http(s) URL. User information in it is sent as basic
	// auth and never logged.
	URL string
	// Source is the CloudEvents source and the CDEvents context and
	// subject source (--cloudevents.source), a URI-reference; default
	// DefaultSource. Give each crowsnest installation its own, e.g.
	// https://crowsnest.prod.example.com, so receivers can tell them
	// apart: the event id is only unique per source.
	Source string
	// BufferSize is how many events wait to be posted at most; beyond
	// it Send drops (--cloudevents.buffer-size).
	BufferSize int
	// Timeout bounds each POST attempt (--cloudevents.timeout).
	Timeout time.Duration
	// MaxRetries is how many times a failed POST is retried after the
	// first attempt before its event is dropped (--cloudevents.max-retries).
	// 0 takes DefaultMaxRetries; a negative value disables retries.
	MaxRetries int
	// MinBackoff is the first wait before a retry; the waits double, with
	// jitter, up to MaxBackoff (--cloudevents.min-backoff,
	// --cloudevents.max-backoff). A Retry-After answer is honoured within
	// the same bounds.
	MinBackoff, MaxBackoff time.Duration
	// Headers are added to each request, e.g. Authorization
	// (--cloudevents.header). Content-Type is the sink's own.
	Headers map[string]string
	// FlushTimeout bounds the flush when the sink stops; default
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	// Gate reports whether this replica sends (leads); nil: always.
	Gate func() bool
}

// DefaultConfig returns a Config with every default set and no URL.
func DefaultConfig() Config {
	return Config{
		Source:       DefaultSource,
		BufferSize:   DefaultBufferSize,
		Timeout:      DefaultTimeout,
		MaxRetries:   DefaultMaxRetries,
		MinBackoff:   DefaultMinBackoff,
		MaxBackoff:   DefaultMaxBackoff,
		FlushTimeout: DefaultFlushTimeout,
	}
}

// withDefaults fills zero fields with defaults and turns a negative
// MaxRetries into 0.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Source == "" {
		c.Source = d.Source
	}
	if c.BufferSize == 0 {
		c.BufferSize = d.BufferSize
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = d.MaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = d.FlushTimeout
	}
	return c
}

// Validate checks the configuration after defaults for zero fields are
// applied, and returns every problem found, each naming its flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("--cloudevents.url: required"))
	} else if u, err := url.Parse(c.URL); err != nil {
		// url.Error quotes the URL, credentials and all.
		errs = append(errs, fmt.Errorf("--cloudevents.url: %q is not a valid URL", redact.Input(c.URL)))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--cloudevents.url: %q is not an absolute http(s) URL", redact.Input(c.URL)))
	}
	if _, err := url.Parse(c.Source); err != nil {
		errs = append(errs, fmt.Errorf("--cloudevents.source: %q is not a URI-reference", c.Source))
	}
	for _, p := range []struct {
		flag string
		neg  bool
		v    any
	}{
		{"--cloudevents.buffer-size", c.BufferSize < 0, c.BufferSize},
		{"--cloudevents.timeout", c.Timeout < 0, c.Timeout},
		{"--cloudevents.min-backoff", c.MinBackoff < 0, c.MinBackoff},
		{"--cloudevents.max-backoff", c.MaxBackoff < 0, c.MaxBackoff},
	} {
		if p.neg {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", p.flag, p.v))
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("--cloudevents.max-backoff: %s is less than --cloudevents.min-backoff %s", c.MaxBackoff, c.MinBackoff))
	}
	for name, value := range c.Headers {
		switch {
		case !isToken(name):
			errs = append(errs, fmt.Errorf("--cloudevents.header: %q is not a valid header name", name))
		case strings.EqualFold(name, "Content-Type"):
			errs = append(errs, errors.New("--cloudevents.header: Content-Type is set by the sink (application/cloudevents+json)"))
		case strings.ContainsAny(value, "\r\n\x00"):
			// The value is not quoted: it may be a secret.
			errs = append(errs, fmt.Errorf("--cloudevents.header: the value of %s holds a line break or NUL", name))
		}
	}
	return errors.Join(errs...)
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2),
// what a header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
