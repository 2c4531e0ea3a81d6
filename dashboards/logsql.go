package dashboards

import (
	"fmt"
	"strconv"
	"strings"
)

// LogsQL translates a LogQL query of the dashboards (LogQueries) into the
// equivalent VictoriaLogs LogsQL query, after expanding its Grafana
// variables with vars as Expand does.
//
// VictoriaLogs ingests Loki pushes with the stream labels as stream fields
// and the line as _msg, unparsed. The dashboards keep to a small part of
// LogQL that LogsQL says alike:
//
//   - the stream selector {label="v", label=~"re", label!="v", label!~"re"}
//     is a LogsQL stream filter, written the same (both anchor their
//     regular expressions, as Prometheus does);
//   - | json is | unpack_json (the JSON line's keys become fields);
//   - a label filter | field="v" is | filter field:="v", field!="v" is
//     | filter -field:="v";
//   - | field=~"re" is | filter field:~"^(?:re)$", field!~"re" its
//     negation: LogQL anchors the expression, LogsQL matches it anywhere.
//
// In both languages a field the line lacks is the empty string, so
// field=~"a|" keeps the lines without the field. Anything else (line
// filters, logfmt, line_format, label_format, and/or, numeric
// comparisons, metric queries) is an error naming what cannot be
// translated.
func LogsQL(expr string, vars map[string]string) (string, error) {
	expanded := Expand(expr, vars)
	toks, err := logqlTokens(expanded)
	if err != nil {
		return "", fmt.Errorf("translate %q to LogsQL: %w", expr, err)
	}
	p := &logqlParser{toks: toks}
	out, err := p.query()
	if err != nil {
		return "", fmt.Errorf("translate %q to LogsQL: %w", expr, err)
	}
	return out, nil
}

// logqlToken is one token of a LogQL query: an identifier, a string (its
// value unquoted), a number or duration, or an operator or punctuation.
type logqlToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number, 'o' operator or punctuation
	text string
	pos  int
}

func (t logqlToken) String() string {
	if t.kind == 's' {
		return strconv.Quote(t.text)
	}
	return t.text
}

// logqlOperators are LogQL's operators and punctuation, longest first.
func logqlOperators() []string {
	return []string{"|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", ",", "|", "=", "(", ")", ">", "<", "[", "]"}
}

func logqlTokens(s string) ([]logqlToken, error) {
	var toks []logqlToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("string at offset %d: %w", i, err)
			}
			toks = append(toks, logqlToken{'s', v, i})
			i = j + 1
		case c == '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, logqlToken{'s', s[i+1 : i+1+j], i})
			i += j + 2
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, logqlToken{'i', s[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1 // a number or a duration such as 5m
			for j < len(s) && (s[j] == '.' || s[j] >= '0' && s[j] <= '9' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
			toks = append(toks, logqlToken{'n', s[i:j], i})
			i = j
		default:
			op := ""
			for _, o := range logqlOperators() {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			toks = append(toks, logqlToken{'o', op, i})
			i += len(op)
		}
	}
	return toks, nil
}

type logqlParser struct {
	toks []logqlToken
	i    int
}

func (p *logqlParser) peek() (logqlToken, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return logqlToken{}, false
}

func (p *logqlParser) next(what string) (logqlToken, error) {
	t, ok := p.peek()
	if !ok {
		return t, fmt.Errorf("want %s, the query ends", what)
	}
	p.i++
	return t, nil
}

func (p *logqlParser) expect(kind byte, text, what string) (logqlToken, error) {
	t, err := p.next(what)
	if err != nil {
		return t, err
	}
	if t.kind != kind || text != "" && t.text != text {
		return t, fmt.Errorf("want %s at offset %d, not %s", what, t.pos, t)
	}
	return t, nil
}

// query is a stream selector followed by pipeline stages.
func (p *logqlParser) query() (string, error) {
	if t, ok := p.peek(); ok && t.kind == 'i' {
		return "", fmt.Errorf("%s(...) at offset %d: metric queries are not translated, only log queries", t.text, t.pos)
	}
	sel, err := p.selector()
	if err != nil {
		return "", err
	}
	out := []string{sel}
	for {
		t, ok := p.peek()
		if !ok {
			return strings.Join(out, " | "), nil
		}
		p.i++
		switch {
		case t.kind == 'o' && t.text == "|":
		case t.kind == 'o' && (t.text == "|=" || t.text == "|~" || t.text == "!=" || t.text == "!~"):
			return "", fmt.Errorf("line filter %s at offset %d: not translated (filter on a field of | json instead)", t.text, t.pos)
		default:
			return "", fmt.Errorf("want | at offset %d, not %s", t.pos, t)
		}
		stage, err := p.stage()
		if err != nil {
			return "", err
		}
		out = append(out, stage)
	}
}

// selector is the stream selector: {name op "value", ...}.
func (p *logqlParser) selector() (string, error) {
	if _, err := p.expect('o', "{", "a stream selector {...}"); err != nil {
		return "", err
	}
	var ms []string
	for {
		name, err := p.expect('i', "", "a stream label")
		if err != nil {
			return "", err
		}
		op, err := p.expect('o', "", "a matcher operator (=, =~, !=, !~)")
		if err != nil {
			return "", err
		}
		switch op.text {
		case "=", "=~", "!=", "!~":
		default:
			return "", fmt.Errorf("matcher operator %s at offset %d: want =, =~, != or !~", op.text, op.pos)
		}
		val, err := p.expect('s', "", "a quoted value")
		if err != nil {
			return "", err
		}
		ms = append(ms, name.text+op.text+strconv.Quote(val.text))
		sep, err := p.expect('o', "", ", or }")
		if err != nil {
			return "", err
		}
		switch sep.text {
		case ",":
			continue
		case "}":
			return "{" + strings.Join(ms, ",") + "}", nil
		}
		return "", fmt.Errorf("want , or } at offset %d, not %s", sep.pos, sep)
	}
}

// stage is one pipeline stage after its |: json or a label filter.
func (p *logqlParser) stage() (string, error) {
	t, err := p.expect('i', "", "a parser or a label filter after |")
	if err != nil {
		return "", err
	}
	next, more := p.peek()
	if t.text == "json" && (!more || next.kind == 'o' && next.text == "|") {
		return "unpack_json", nil
	}
	if !more || next.kind != 'o' {
		return "", fmt.Errorf("| %s at offset %d: not translated (only | json and label filters field=\"v\", =~, !=, !~ are)", t.text, t.pos)
	}
	if strings.HasPrefix(t.text, "__") {
		return "", fmt.Errorf("label filter on %s at offset %d: not translated (a LogQL internal label)", t.text, t.pos)
	}
	p.i++ // the operator
	var filter string
	switch next.text {
	case "=", "==":
		filter = ":="
	case "!=":
		filter = ":="
	case "=~", "!~":
		filter = ":~"
	default:
		return "", fmt.Errorf("label filter %s %s at offset %d: not translated (only =, =~, != and !~ on strings are)", t.text, next.text, next.pos)
	}
	val, err := p.expect('s', "", "a quoted value")
	if err != nil {
		return "", err
	}
	if after, ok := p.peek(); ok && !(after.kind == 'o' && after.text == "|") {
		return "", fmt.Errorf("%s at offset %d: not translated (combine filters with | only, not and, or or ,)", after, after.pos)
	}
	value := val.text
	if filter == ":~" {
		value = "^(?:" + value + ")$" // LogQL anchors the expression, LogsQL does not
	}
	neg := ""
	if next.text == "!=" || next.text == "!~" {
		neg = "-"
	}
	return "filter " + neg + t.text + filter + strconv.Quote(value), nil
}
