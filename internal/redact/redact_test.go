package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/org/repo":                 "https://github.com/org/repo",
		"https://user:s3cret@github.com/org/repo.git": "https://github.com/org/repo.git",
		"https://ghp_token@github.com/org/repo":       "https://github.com/org/repo",
		"http://admin:pw@loki:3100":                   "http://loki:3100",
		"http://admin:pw@loki:3100/loki/api/v1/push":  "http://loki:3100/loki/api/v1/push",
		"https://user:pa/ss@host/repo":                "https://host/repo",
		"https://user:pa?ss@host/repo":                "https://host/repo",
		"https://user:pa#ss@host/repo":                "https://host/repo",
		"https://tok/en@host/repo":                    "https://host/repo",
		"https://user:p%zzword@host/repo":             "https://host/repo",
		"git@github.com:org/repo.git":                 "git@github.com:org/repo.git",
		"oci://registry.example.com/charts":           "oci://registry.example.com/charts",
		"":                                            "",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzURL checks that no password survives, whatever characters it holds.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"s3cret", "pa/ss", "p?w", "p#w", "p@w", "%zz", ":"} {
		f.Add("user", s, "host:443/org/repo")
	}
	f.Fuzz(func(t *testing.T, user, password, hostPath string) {
		if len(password) < 4 || strings.Contains(hostPath, password) || strings.Contains(user, password) {
			t.Skip() // the secret must be recognisable and only in the userinfo
		}
		if strings.Trim(hostPath, "abcdefghijklmnopqrstuvwxyz0123456789.-:/") != "" {
			t.Skip() // a plain host, port and path, so the secret's end is clear
		}
		got := URL("https://" + user + ":" + password + "@" + hostPath)
		if strings.Contains(strings.TrimPrefix(got, "https://"), password) {
			t.Fatalf("password %q kept in %q", password, got)
		}
	})
}

func TestInput(t *testing.T) {
	for in, want := range map[string]string{
		"user:pw@alertmanager:9093":          "<redacted>@alertmanager:9093",
		"http://user:pw@alertmanager:9093/x": "http://alertmanager:9093/x",
		"alertmanager:9093":                  "alertmanager:9093",
		"ftp://u:p/w@host":                   "ftp://host",
	} {
		if got := Input(in); got != want {
			t.Errorf("Input(%q) = %q, want %q", in, got, want)
		}
	}
}
