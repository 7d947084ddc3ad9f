package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"koers/api"
)

func TestTokensFileRefusesWhatItCannotUse(t *testing.T) {
	cases := map[string]string{
		"":                            "names no token",
		"p-root":                      "line 1",
		"p-root short":                "shorter",
		"P.ROOT 0123456789abcdef0123": "actor",
		"p-a 0123456789abcdef\np-b 0123456789abcdef": "twice",
	}
	for in, want := range cases {
		if _, err := api.ParseTokens(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("tokens %q: %v, want an error mentioning %q", in, err, want)
		}
	}
}

func TestWithTokensCallersAreWhoTheirTokenSays(t *testing.T) {
	e := newEnv(t)
	tokens, err := api.ParseTokens(strings.NewReader("# who may call\np-root rootrootrootrootroot\np-0001 annesannesannesannes\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Ledger: e.ledger.Handler, Log: e.ledger.Store, ReadModels: e.db, Projector: e.proj, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e.srv = srv // the helpers now talk to the server with tokens

	r := e.post(t, structure)
	p := r.problem(t, http.StatusUnauthorized)
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") || p["type"] != "urn:koers:problem:unauthenticated" {
		t.Fatalf("no token: %v %v", r.header, p)
	}
	e.post(t, structure, "Authorization", "Bearer wrongwrongwrongwrong").problem(t, http.StatusUnauthorized)
	p = e.post(t, structure, "Authorization", "Bearer annesannesannesannes").problem(t, http.StatusForbidden)
	if p["field"] != "by" || !strings.Contains(p["detail"].(string), `"p-0001"`) {
		t.Fatalf("a decision in someone else's name: %v", p)
	}
	// A body that is no decision at all is refused as such, whoever sends
	// it: it names no actor to compare with the token's.
	for _, body := range []string{`null`, `[]`, `"p-0001"`} {
		p = e.post(t, body, "Authorization", "Bearer annesannesannesannes").problem(t, http.StatusUnprocessableEntity)
		if !strings.Contains(p["detail"].(string), "want a JSON object") {
			t.Fatalf("body %s: %v", body, p)
		}
	}
	e.record(t, structure, "Authorization", "Bearer rootrootrootrootroot")
	e.do(t, "GET", "/v1/org", nil).problem(t, http.StatusUnauthorized)
	if r := e.do(t, "GET", "/v1/org", nil, "Authorization", "Bearer annesannesannesannes"); r.status != http.StatusOK {
		t.Fatalf("org with a token: %d %s", r.status, r.body)
	}
	for _, open := range []string{"/healthz", "/metrics", "/v1/openapi.json"} {
		if r := e.get(t, open); r.status != http.StatusOK {
			t.Fatalf("%s without a token: %d", open, r.status)
		}
	}
}
