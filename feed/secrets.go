package feed

import (
	"net/url"
	"slices"
	"strings"
)

// mask stands for every credential-like part of a target URL.
const mask = "xxxxx"

// harmlessParams are the query parameters whose values are shown: they
// configure the connection and never carry a credential. Every other
// query value is masked.
var harmlessParams = []string{"sslmode", "connect_timeout", "application_name", "heartbeat", "channel_max", "frame_max",
	"dial_timeout", "read_timeout", "write_timeout", "protocol"}

// Bounds of the path segments taken for tokens.
const (
	// minSecretSegment: shorter segments ("T000", "v1", "hooks") are shown.
	minSecretSegment = 8
	// maxWordSegment: a segment at least this long is masked even when it
	// reads as a plain word.
	maxWordSegment = 24
)

// secretSegment reports whether a path segment looks like a token: at least
// minSecretSegment characters and not a plain lower-case word ("services",
// "koers-events"), or at least maxWordSegment characters whatever they are.
// Slack's /services/T000/B000/XXXXXXXX and /hooks/<id>/SECRETPATH keep
// their short ids and lose the token.
func secretSegment(s string) bool {
	if len(s) >= maxWordSegment {
		return true
	}
	if len(s) < minSecretSegment {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' && r != '_' && r != '.' {
			return true
		}
	}
	return false
}

// redact is the target URL as it may be shown, logged and stored: the
// user info (user name as well as password: a token often is the user
// name), the token-looking path segments, the query values but those of
// harmlessParams and any fragment are masked. The same target always
// redacts the same way, and a redacted target redacts to itself.
func redact(u *url.URL) string {
	c := *u
	if c.Opaque != "" {
		c.Opaque = mask
	}
	if c.User != nil {
		c.User = url.User(mask)
	}
	// Segment by segment as written, so that an escaped '/' stays one.
	segs := strings.Split(c.EscapedPath(), "/")
	masked := false
	for i, s := range segs {
		if un, err := url.PathUnescape(s); err != nil || secretSegment(un) {
			segs[i], masked = mask, true
		}
	}
	if masked {
		c.RawPath = strings.Join(segs, "/")
		c.Path, _ = url.PathUnescape(c.RawPath)
	}
	if c.RawQuery != "" && c.RawQuery != mask {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = mask
		} else {
			for k, vs := range q {
				if slices.Contains(harmlessParams, strings.ToLower(k)) {
					continue
				}
				for i := range vs {
					vs[i] = mask
				}
			}
			c.RawQuery = q.Encode()
		}
	}
	if c.Fragment != "" {
		c.Fragment, c.RawFragment = mask, ""
	}
	return c.String()
}

// redactStored redacts a target as an earlier build stored it (it masked
// only the password and some query values).
func redactStored(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return mask
	}
	return redact(u)
}

// minScrubbed is the shortest secret scrub replaces: shorter ones would
// mangle every message and say little.
const minScrubbed = 3

// secretsOf lists what redact masks in u, longest first, in the forms an
// error message may quote them (as written and unescaped).
func secretsOf(u *url.URL) []string {
	var out []string
	add := func(s ...string) {
		for _, v := range s {
			if len(v) >= minScrubbed && v != mask && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	add(u.String(), u.Opaque, u.Fragment)
	if u.User != nil {
		p, _ := u.User.Password()
		add(u.User.String(), u.User.Username(), p, url.QueryEscape(u.User.Username()), url.QueryEscape(p))
	}
	for _, s := range strings.Split(u.EscapedPath(), "/") {
		if un, err := url.PathUnescape(s); err != nil {
			add(s)
		} else if secretSegment(un) {
			add(s, un)
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for k, vs := range q {
			if !slices.Contains(harmlessParams, strings.ToLower(k)) {
				for _, v := range vs {
					add(v, url.QueryEscape(v))
				}
			}
		}
	} else {
		add(u.RawQuery)
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// scrub returns err with every secret of the target masked in its message
// (a driver's error often quotes the URL it failed on); errors.Is and As
// still see err.
func (t *target) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range t.secrets {
		clean = strings.ReplaceAll(clean, s, mask)
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error whose message had a target's secrets masked.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
