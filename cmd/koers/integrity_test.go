package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
)

// withNATS connects to a data folder's embedded server (started here when
// no koers process holds it) for a test that tampers behind Koers' back.
func withNATS(t *testing.T, data string, fn func(js jetstream.JetStream)) {
	t.Helper()
	l, err := eventstore.OpenLocal(eventstore.LocalOptions{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := l.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	fn(js)
}

// lastBlock is the stream's last message block file in the data folder.
func lastBlock(t *testing.T, data string) string {
	t.Helper()
	var blocks []string
	err := filepath.WalkDir(filepath.Join(data, "nats"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".blk") && strings.Contains(p, filepath.Join("streams", "KOERS", "msgs")) {
			blocks = append(blocks, p)
		}
		return err
	})
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no block file of stream KOERS under %s: %v", data, err)
	}
	sort.Slice(blocks, func(i, j int) bool {
		return len(blocks[i]) < len(blocks[j]) || len(blocks[i]) == len(blocks[j]) && blocks[i] < blocks[j]
	})
	return blocks[len(blocks)-1]
}

// TestTamperedStreamsFailVerify removes, trims and cuts the ledger's stream
// behind Koers' back: verify exits 2 against the read models' anchor and
// against an auditor's anchor file, and no command silently starts over.
func TestTamperedStreamsFailVerify(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(t *testing.T, data string)
	}{
		{"removed", func(t *testing.T, data string) {
			withNATS(t, data, func(js jetstream.JetStream) {
				if err := js.DeleteStream(ctx, "KOERS"); err != nil {
					t.Fatal(err)
				}
			})
		}},
		{"trimmed to 10 messages, discard old", func(t *testing.T, data string) {
			withNATS(t, data, func(js jetstream.JetStream) {
				s, err := js.Stream(ctx, "KOERS")
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.MaxMsgs, cfg.Discard = 10, jetstream.DiscardOld
				if _, err := js.UpdateStream(ctx, cfg); err != nil {
					t.Fatalf("trim: %v", err)
				}
			})
		}},
		{"last block file cut", func(t *testing.T, data string) {
			blk := lastBlock(t, data)
			fi, err := os.Stat(blk)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blk, fi.Size()*2/3); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			if code, _, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
				t.Fatalf("init: %s", errOut)
			}
			var lines strings.Builder
			for i := range 20 {
				fmt.Fprintf(&lines, `{"id":"form-%d","by":"p-root","authority":"root","reason":"r","effective":"2025-06-01","changes":[{"kind":"team.form","id":"t-%d","name":"Team %d","type":"platform"}]}`+"\n", i, i, i)
			}
			if code, _, errOut := koers(t, data, lines.String(), "apply", "-f", "-"); code != 0 {
				t.Fatalf("apply: %s", errOut)
			}
			// A query brings the read models up to date, which anchors them.
			if code, _, errOut := koers(t, data, "", "org"); code != 0 {
				t.Fatalf("org: %s", errOut)
			}
			file := filepath.Join(t.TempDir(), "anchor.json")
			if code, _, errOut := koers(t, data, "", "anchor", "-o", file); code != 0 {
				t.Fatalf("anchor: %s", errOut)
			}
			if code, out, errOut := koers(t, data, "", "verify", "--anchor", file); code != 0 || !strings.Contains(out, "checked against 2 anchors") {
				t.Fatalf("verify before tampering: exit %d\n%s%s", code, out, errOut)
			}

			c.tamper(t, data)

			for _, args := range [][]string{
				{"verify"}, // the read models' anchor
				{"verify", "--no-read-models", "--anchor", file}, // the auditor's file
				{"verify", "--anchor", file},
			} {
				code, out, errOut := koers(t, data, "", args...)
				if code != 2 {
					t.Errorf("%v after the stream was %s: exit %d, want 2\n%s%s", args, c.name, code, out, errOut)
				}
				// The anchor itself catches it, whatever else does.
				if c.name != "removed" && !strings.Contains(out, "anchor") {
					t.Errorf("%v after the stream was %s: no anchor problem reported:\n%s", args, c.name, out)
				}
				t.Logf("%v:\n%s%s", args, out, errOut)
			}
			// No command starts a new, empty ledger or writes on.
			late := `{"id":"late","by":"p-root","authority":"root","reason":"r","effective":"2025-06-01","changes":[{"kind":"team.form","id":"t-late","name":"Late","type":"platform"}]}`
			if code, out, errOut := koers(t, data, late, "apply", "-f", "-"); code == 0 {
				t.Errorf("a decision after the stream was %s was recorded:\n%s%s", c.name, out, errOut)
			} else {
				t.Logf("apply after the stream was %s: exit %d: %s", c.name, code, strings.TrimSpace(errOut))
			}
			withNATS(t, data, func(js jetstream.JetStream) {
				if c.name == "removed" {
					if _, err := js.Stream(ctx, "KOERS"); err == nil {
						t.Error("the removed stream was created again")
					}
				}
			})
		})
	}
}

// TestServeStopsWritingWhenTheStreamIsTrimmed: serve watches its stream;
// trimmed behind its back, it stops taking decisions, /healthz answers 503
// and koers_integrity_problems counts the problems.
func TestServeStopsWritingWhenTheStreamIsTrimmed(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	dbs.Lock()
	db := dbs.m[data]
	dbs.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs strings.Builder
	var logsMu sync.Mutex
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data", data, "--database-url", db, "serve", "--listen", "127.0.0.1:0", "--watch-interval", "200ms"},
			strings.NewReader(""), pw, writerFunc(func(b []byte) (int, error) { logsMu.Lock(); defer logsMu.Unlock(); return logs.Write(b) }))
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := regexp.MustCompile(`http://\S+`).FindString(line)
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(id string) int {
		body := fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-%s","name":"T","type":"platform"}]}`, id, id)
		resp, err := client.Post(base+"/v1/decisions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 12 {
		if code := post(fmt.Sprint("d", i)); code != http.StatusCreated {
			t.Fatalf("decision %d before the trim: %d", i, code)
		}
	}

	withNATS(t, data, func(js jetstream.JetStream) {
		s, err := js.Stream(ctx, "KOERS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs, cfg.Discard = 10, jetstream.DiscardOld
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("trim: %v", err)
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "integrity") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz did not answer 503 within 15s of the trim")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := post("after-trim"); code != http.StatusServiceUnavailable {
		t.Errorf("a decision after the trim: %d, want 503", code)
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := regexp.MustCompile(`(?m)^koers_integrity_problems ([0-9.e+]+)$`).FindStringSubmatch(string(b)); m == nil || m[1] == "0" {
		t.Errorf("koers_integrity_problems: %v, want more than 0", m)
	}
	logsMu.Lock()
	if !strings.Contains(logs.String(), "ledger integrity lost: writes stopped") {
		t.Errorf("no log line says why writes stopped:\n%s", logs.String())
	}
	logsMu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
