package faultmatrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The load: clients that each send decisions one after the other to
// serve, as an integrator would — with a token, the decision's id as its
// Idempotency-Key, and a retryable answer (503, a dropped connection, a
// conflict) sent again with the same id after a bounded, jittered
// back-off. Every tenth decision is meant to be refused (it forms a team
// that exists), so that refusals are part of what is checked: a refused
// decision must not be in the log.

// outcome is what became of one decision.
type outcome int

const (
	pending outcome = iota
	acknowledged
	refused
	givenUp
)

// decision is one decision of the load and every answer it got.
type decision struct {
	id           string
	badOnPurpose bool // meant to be refused
	attempts     int
	outcome      outcome
	status       int    // the last answer's status, 0 for no answer
	reason       string // the last answer's problem type, or the error
	ackedAt      time.Time
	duplicate    bool // acknowledged with 200 duplicate: it had landed on an earlier attempt
	// ambiguous: an earlier attempt went unanswered (no answer, or 503
	// outcome-unknown), so it may have landed.
	ambiguous bool
	// contradicted: an answer said nothing was recorded (an error other
	// than outcome-unknown, with no ambiguous attempt before it), yet a
	// later attempt found the decision recorded. Never allowed.
	contradicted    bool
	saidNotRecorded bool
}

// loadOptions shape a load.
type loadOptions struct {
	Clients int
	// Interval is the least time between the starts of two decisions of
	// one client: it bounds the load to Clients/Interval decisions a
	// second, so that a long outage does not pile up more than the checks
	// can read back.
	Interval time.Duration
	// GiveUpAfter bounds the time one decision is retried.
	GiveUpAfter time.Duration
}

type load struct {
	opts  loadOptions
	base  string
	token string
	http  *http.Client

	mu        sync.Mutex
	decisions map[string]*decision
	acks      []time.Time // in the order they came
	retries   int         // attempts after the first, over all decisions

	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(prefix, base, token string, opts loadOptions) *load {
	l := &load{opts: opts, base: base, token: token, decisions: map[string]*decision{}, stop: make(chan struct{}),
		// Longer than the ledger's 20 s of outcome resolution, so that an
		// answer is waited for rather than abandoned.
		http: &http.Client{Timeout: 30 * time.Second}}
	for c := range opts.Clients {
		l.wg.Add(1)
		go l.client(fmt.Sprintf("%s-c%d", prefix, c))
	}
	return l
}

// finish stops the clients after the decision each has in flight (which
// is retried to its end) and waits for them.
func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) client(prefix string) {
	defer l.wg.Done()
	firstTeam := "" // a team this client formed, to form again on purpose
	for n := 0; !l.stopped(); n++ {
		started := time.Now()
		d := &decision{id: fmt.Sprintf("%s-%d", prefix, n)}
		team := "t-" + d.id
		if n%10 == 9 && firstTeam != "" {
			d.badOnPurpose, team = true, firstTeam
		}
		body := fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"load","changes":[{"kind":"team.form","id":%q,"name":"T","type":"platform"}]}`, d.id, team)
		l.mu.Lock()
		l.decisions[d.id] = d
		l.mu.Unlock()
		l.send(d, body)
		if d.outcome == acknowledged && firstTeam == "" && !d.badOnPurpose {
			firstTeam = team
		}
		if wait := l.opts.Interval - time.Since(started); wait > 0 {
			select {
			case <-l.stop:
			case <-time.After(wait):
			}
		}
	}
}

// send sends one decision until it is answered for good or the time to
// give up has come. The back-off doubles from 100 ms to 2 s, with jitter.
func (l *load) send(d *decision, body string) {
	const maxAttempts = 1000 // a bound besides the time: 1000 × 100 ms is well over any GiveUpAfter
	giveUp := time.Now().Add(l.opts.GiveUpAfter)
	backoff := 100 * time.Millisecond
	for attempt := 0; attempt < maxAttempts; attempt++ {
		status, reason := l.post(d.id, body)
		l.mu.Lock()
		d.attempts++
		if attempt > 0 {
			l.retries++
		}
		d.status, d.reason = status, reason
		kind, _, _ := strings.Cut(reason, ":") // the problem's type
		retryable := status == 0 || status == http.StatusServiceUnavailable || status == http.StatusBadGateway ||
			status == http.StatusGatewayTimeout || (status == http.StatusConflict && kind == "conflict")
		switch {
		case status == http.StatusCreated || status == http.StatusOK:
			d.outcome, d.ackedAt, d.duplicate = acknowledged, time.Now(), status == http.StatusOK
			// The first attempt of a fresh id cannot be a duplicate, nor
			// can one after an answer that said nothing was recorded.
			d.contradicted = d.duplicate && (attempt == 0 || d.saidNotRecorded)
			l.acks = append(l.acks, d.ackedAt)
			l.mu.Unlock()
			return
		case !retryable:
			// A refusal is final for the client; keep it, and note if a
			// refused decision is found recorded later (it never should).
			d.outcome = refused
			l.mu.Unlock()
			return
		}
		if status == 0 || kind == "outcome-unknown" {
			d.ambiguous = true
		} else if !d.ambiguous {
			d.saidNotRecorded = true
		}
		l.mu.Unlock()
		if time.Now().Add(backoff).After(giveUp) {
			break
		}
		time.Sleep(backoff/2 + rand.N(backoff/2+1))
		backoff = min(2*backoff, 2*time.Second)
	}
	l.mu.Lock()
	d.outcome = givenUp
	l.mu.Unlock()
}

// post sends the decision once: its answer's status and problem type, or
// status 0 and the error when there was no answer.
func (l *load) post(id, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, l.base+"/v1/decisions", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Idempotency-Key", id)
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	var problem struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(b, &problem); err != nil || problem.Type == "" {
		return resp.StatusCode, string(bytes.TrimSpace(b))
	}
	// The type is a URN (urn:koers:problem:conflict): its last part.
	reason := problem.Type[strings.LastIndexAny(problem.Type, ":/")+1:]
	if problem.Detail != "" {
		reason += ": " + problem.Detail
	}
	return resp.StatusCode, reason
}

// firstAckAfter is the first acknowledgement answered after t0, false if
// none yet.
func (l *load) firstAckAfter(t0 time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.acks), func(i int) bool { return l.acks[i].After(t0) })
	if i == len(l.acks) {
		return time.Time{}, false
	}
	return l.acks[i], true
}

// ackedCount is how many decisions were acknowledged so far.
func (l *load) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// ackedBefore lists the ids acknowledged before t.
func (l *load) ackedBefore(t time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, d := range l.decisions {
		if d.outcome == acknowledged && d.ackedAt.Before(t) {
			ids = append(ids, d.id)
		}
	}
	return ids
}

// snapshot copies every decision, once the load has finished.
func (l *load) snapshot() []decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]decision, 0, len(l.decisions))
	for _, d := range l.decisions {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
