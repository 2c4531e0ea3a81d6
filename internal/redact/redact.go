// Package redact removes credentials from text that crowsnest logs, exports
// as labels or writes to recordings.
package redact

import (
	"net/url"
	"strings"
)

// URL returns u without any user information, for logs, labels and error
// messages. "https://user:token@host/repo" becomes "https://host/repo"; the
// user name goes too, since tokens are often passed as one.
//
// It errs on the side of secrecy: when a URL cannot be parsed, or its path,
// query or fragment holds an '@' (a password with an unescaped '/', '?' or
// '#' makes the parser see its tail as the path), everything between the
// scheme and the last '@' is cut. A rare URL with a genuine '@' in its path
// then loses the part before it; a secret is never kept. Text without "://"
// (SCP-like "git@host:org/repo", whose login name carries no secret) is
// returned as it is.
func URL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if !strings.Contains(rest, "@") {
		return u
	}
	parsed, err := url.Parse(u)
	if err == nil && !strings.Contains(parsed.EscapedPath()+parsed.RawQuery+parsed.Fragment, "@") &&
		!strings.Contains(parsed.Opaque, "@") {
		parsed.User = nil
		return parsed.String()
	}
	return scheme + "://" + rest[strings.LastIndex(rest, "@")+1:]
}

// Input returns text a user passed where a URL was expected, for an error
// message about it: URL's redaction, and when no "://" made it a URL
// ("user:password@host:9093"), everything up to the last '@' replaced.
func Input(s string) string {
	s = URL(s)
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "<redacted>@" + s[i+1:]
	}
	return s
}
