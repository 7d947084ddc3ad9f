package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"koers/internal/pgtest"
)

func TestServeAnswersAndStopsCleanly(t *testing.T) {
	data, db := t.TempDir(), pgtest.Fresh(t)
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"--data", data, "--database-url", db, "init", "--root", "p-root", "--effective", "2025-01-01"},
		strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	// A webhook receiver for the feed that serve runs along.
	got := make(chan string, 100)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID string `json:"id"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		got <- ev.ID
	}))
	defer receiver.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data", data, "--database-url", db, "serve", "--listen", "127.0.0.1:0", "--feed", "hook=" + receiver.URL}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := regexp.MustCompile(`http://\S+`).FindString(line)
	if base == "" {
		t.Fatalf("no address in %q", line)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// The web app at /, beside the API.
	resp, err = client.Get(base + "/")
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the web app at /: %v %v", resp, err)
	}
	resp.Body.Close()
	body := `{"id":"form","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-1","name":"One","type":"platform"}]}`
	resp, err = client.Post(base+"/v1/decisions", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("post: %v %v", resp, err)
	}
	var res struct {
		ID        string   `json:"id"`
		Sequences []uint64 `json:"sequences"`
	}
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if res.ID != "form" || len(res.Sequences) == 0 {
		t.Fatalf("post answered %+v", res)
	}
	// The feed delivers the genesis and the new decision's events.
	want := map[string]bool{"form/0": true, "form/1": true}
	for deadline := time.After(20 * time.Second); len(want) > 0; {
		select {
		case id := <-got:
			delete(want, id)
		case <-deadline:
			t.Fatalf("the feed did not deliver %v within 20s", want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after cancel", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of cancel")
	}
}
