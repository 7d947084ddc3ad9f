package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"koers/domain"
)

// Tokens says which actor each bearer token speaks for. With tokens
// configured, every /v1 route asks for `Authorization: Bearer <token>`
// (401 without a known one), and a decision must be taken by the token's
// actor (403 otherwise): the mandate check then holds for the real caller,
// not for whoever a request body claims to be.
type Tokens struct {
	actors map[[sha256.Size]byte]string // by the token's hash: no token is kept in memory as itself
}

// MinTokenLen is the shortest token accepted.
const MinTokenLen = 16

// maxTokens bounds a tokens file.
const maxTokens = 10_000

// ParseTokens reads "<actor> <token>" lines; blank lines and lines starting
// with # are skipped. Every refusal names the line.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{actors: map[[sha256.Size]byte]string{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("tokens line %d: want \"<actor> <token>\"", line)
		}
		if err := domain.ValidID(fields[0]); err != nil {
			return nil, fmt.Errorf("tokens line %d: actor: %w", line, err)
		}
		if len(fields[1]) < MinTokenLen {
			return nil, fmt.Errorf("tokens line %d: the token is shorter than %d characters", line, MinTokenLen)
		}
		h := sha256.Sum256([]byte(fields[1]))
		if _, dup := t.actors[h]; dup {
			return nil, fmt.Errorf("tokens line %d: the same token twice", line)
		}
		if len(t.actors) == maxTokens {
			return nil, fmt.Errorf("tokens line %d: more than %d tokens", line, maxTokens)
		}
		t.actors[h] = fields[0]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	if len(t.actors) == 0 {
		return nil, errors.New("tokens: the file names no token")
	}
	return t, nil
}

// actorOf returns the actor of a request's bearer token.
func (t *Tokens) actorOf(r *http.Request) (string, error) {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return "", &unauthenticatedError{"this server needs Authorization: Bearer <token>"}
	}
	actor, ok := t.Actor(token)
	if !ok {
		return "", &unauthenticatedError{"unknown token"}
	}
	return actor, nil
}

// Actor returns the actor a token speaks for, and whether it is known: the
// web app's login asks it.
func (t *Tokens) Actor(token string) (actor string, ok bool) {
	if token == "" {
		return "", false
	}
	actor, ok = t.actors[sha256.Sum256([]byte(token))]
	return actor, ok
}

// unauthenticatedError: no token, or not a known one (401).
type unauthenticatedError struct{ why string }

func (e *unauthenticatedError) Error() string { return e.why }

// impersonationError: a decision by someone other than the caller (403).
type impersonationError struct{ caller, by string }

func (e *impersonationError) Error() string {
	return fmt.Sprintf("the token speaks for %q, the decision is by %q: take decisions in your own name", e.caller, e.by)
}

// checkBy refuses a decision body whose "by" is not the caller.
func checkBy(caller string, body []byte) error {
	var d struct {
		By string `json:"by"`
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil // not a decision at all: the decoder refuses it (422), whoever sent it
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil // the decoder names what is wrong with the body
	}
	if d.By != caller {
		return &impersonationError{caller: caller, by: d.By}
	}
	return nil
}

// open reports the routes anyone may call even with tokens configured.
func open(path string) bool {
	return path == "/healthz" || path == "/metrics" || path == "/v1/openapi.json"
}
