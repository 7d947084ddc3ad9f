package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// boardFixture: board portfolio (p-0042, p-owner, p-0043; quorum 2) and
// mandate m-board held by it: funding.* on *, limit 250000.
var (
	formBoard    = dec(ch("board.form", "id", "portfolio", "name", "Portfolio board", "members", `["p-0042","p-owner","p-0043"]`, "quorum", "2"))
	boardMandate = dec(ch("mandate.grant", "id", "m-board", "holder", "board:portfolio", "kinds", `["funding.*","decision.retract"]`, "scope", "*", "limit", "250000"))
)

func TestDecideBoards(t *testing.T) {
	leave := dec(ch("person.leave", "person", "p-0042"))
	runDecideCases(t, []decideCase{
		{name: "board.form", when: formBoard, then: []string{"board:portfolio board.formed"}},
		{name: "board.form refuses a taken id", given: []string{formBoard}, when: formBoard, errAs: isA[*ExistsError]()},
		{name: "board.form refuses a member who is no person", when: dec(ch("board.form", "id", "b", "name", "B", "members", `["p-0042","p-ghost"]`, "quorum", "1")),
			errAs: isA[*BoardError](), errIs: ErrNotFound, msg: "member p-ghost must be a person in the organisation who has not left"},
		{name: "board.form refuses a member who left", given: []string{leave},
			when: dec(ch("board.form", "id", "b", "name", "B", "members", `["p-0042"]`, "quorum", "1")), errAs: isA[*BoardError](), errIs: ErrRefused},
		{name: "board.form refuses a quorum above the member count", when: dec(ch("board.form", "id", "b", "name", "B", "members", `["p-0042","p-owner"]`, "quorum", "3")),
			errAs: isA[*QuorumError](), errIs: ErrRefused, msg: "quorum 3 with 2 members: the quorum must be between 1 and the member count (give a quorum of at most 2)"},
		{name: "board.add-member", given: []string{formBoard, dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-lending"))},
			when: dec(ch("board.add-member", "board", "portfolio", "person", "p-new", "quorum", "3")), then: []string{"board:portfolio board.member-added"}},
		{name: "board.add-member refuses a member twice", given: []string{formBoard},
			when: dec(ch("board.add-member", "board", "portfolio", "person", "p-0042")), errAs: isA[*StateError](), msg: `already has member "p-0042"`},
		{name: "board.add-member refuses a person who left", given: []string{formBoard, dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-lending")),
			dec(ch("person.leave", "person", "p-new"))},
			when: dec(ch("board.add-member", "board", "portfolio", "person", "p-new")), errAs: isA[*BoardError]()},
		{name: "board.remove-member", given: []string{formBoard},
			when: dec(ch("board.remove-member", "board", "portfolio", "person", "p-0043")), then: []string{"board:portfolio board.member-removed"}},
		{name: "board.remove-member refuses to leave fewer members than the quorum", given: []string{formBoard,
			dec(ch("board.remove-member", "board", "portfolio", "person", "p-0043"))},
			when:  dec(ch("board.remove-member", "board", "portfolio", "person", "p-owner")),
			errAs: isA[*QuorumError](), msg: "quorum 2 with 1 members"},
		{name: "board.remove-member with a lower quorum", given: []string{formBoard, dec(ch("board.remove-member", "board", "portfolio", "person", "p-0043"))},
			when: dec(ch("board.remove-member", "board", "portfolio", "person", "p-owner", "quorum", "1")), then: []string{"board:portfolio board.member-removed"}},
		{name: "board.remove-member refuses a non-member", given: []string{formBoard},
			when: dec(ch("board.remove-member", "board", "portfolio", "person", "p-nobody")), errAs: isA[*StateError](), msg: "has no member"},
		{name: "board.disband", given: []string{formBoard}, when: dec(ch("board.disband", "board", "portfolio")), then: []string{"board:portfolio board.disbanded"}},
		{name: "no changes after disband", given: []string{formBoard, dec(ch("board.disband", "board", "portfolio"))},
			when: dec(ch("board.add-member", "board", "portfolio", "person", "p-0042")), errAs: isA[*InactiveError](), msg: "board:portfolio is disbanded"},
		{name: "disband twice", given: []string{formBoard, dec(ch("board.disband", "board", "portfolio"))},
			when: dec(ch("board.disband", "board", "portfolio")), errAs: isA[*InactiveError]()},
		{name: "board changes need a mandate over the whole organisation", given: []string{formBoard, grants},
			when: decOpts(lending, ch("board.disband", "board", "portfolio")), errAs: isA[*AuthorityError]()},
		{name: "a board holds a mandate", given: []string{formBoard}, when: boardMandate, then: []string{"mandate:m-board mandate.granted"}},
		{name: "no mandate for a board that does not exist", when: boardMandate, errAs: isA[*HolderError](), msg: "it must be an active board"},
		{name: "no mandate for a disbanded board", given: []string{formBoard, dec(ch("board.disband", "board", "portfolio"))},
			when: boardMandate, errAs: isA[*HolderError]()},
		{name: "a decision under a board's mandate needs its quorum", given: []string{formBoard, boardMandate},
			when:  decOpts(as("p-0042", "m-board"), ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "1000")),
			errAs: isA[*ApprovalsNeededError](), msg: "board portfolio decides with 2 approvals, the decision has 1"},
		{name: "a non-member cannot decide under a board's mandate", given: []string{formBoard, boardMandate, dec(ch("person.join", "id", "p-x", "name", "X", "team", "t-lending"))},
			when:  decOpts(as("p-x", "m-board"), ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "1000")),
			errAs: isA[*AuthorityError](), msg: "held by board portfolio, of which p-x is not a member; ask one of its members (p-0042, p-0043, p-owner) to propose the decision"},
		{name: "a board of quorum 1 decides at once", given: []string{dec(ch("board.form", "id", "portfolio", "name", "P", "members", `["p-0042","p-owner"]`, "quorum", "1")), boardMandate},
			when: decOpts(as("p-owner", "m-board"), ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "1000")),
			then: []string{"budget:2026 funding.shifted"}},
		{name: "a disbanded board's mandates are suspended", given: []string{dec(ch("board.form", "id", "portfolio", "name", "P", "members", `["p-0042"]`, "quorum", "1")), boardMandate,
			dec(ch("board.disband", "board", "portfolio"))},
			when:  decOpts(as("p-0042", "m-board"), ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "1000")),
			errAs: isA[*NotInForceError](), msg: "is suspended: its holder board:portfolio was disbanded"},
		{name: "retract a board.form", given: []string{decOpts([]string{"id=d-form"}, ch("board.form", "id", "portfolio", "name", "P", "members", `["p-0042"]`, "quorum", "1"))},
			when: dec(ch("decision.retract", "decision", "d-form")), then: []string{"board:portfolio board.disbanded", "decision:d-form decision.retracted"}},
		{name: "retract a board.add-member", given: []string{formBoard, dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-lending")),
			decOpts([]string{"id=d-add"}, ch("board.add-member", "board", "portfolio", "person", "p-new", "quorum", "3"))},
			when: dec(ch("decision.retract", "decision", "d-add")), then: []string{"board:portfolio board.member-removed", "decision:d-add decision.retracted"}},
	})
}

func TestBoardChangeDecoding(t *testing.T) {
	for _, tc := range []struct{ name, change, msg string }{
		{"quorum 0", `{"kind":"board.form","id":"b","name":"B","members":["p-1"],"quorum":0}`, "quorum 0: want 1 to 50"},
		{"quorum not a number", `{"kind":"board.form","id":"b","name":"B","members":["p-1"],"quorum":"two"}`, "want a whole number of members"},
		{"no members", `{"kind":"board.form","id":"b","name":"B","members":[],"quorum":1}`, "want 1 to 50 members"},
		{"a member twice", `{"kind":"board.form","id":"b","name":"B","members":["p-1","p-1"],"quorum":1}`, `"p-1" is named twice`},
		{"bad board holder", `{"kind":"mandate.grant","id":"m","holder":"board:Bad","kinds":["*"],"scope":"*"}`, "holder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDecision([]byte(`{"by":"p","authority":"root","reason":"r","changes":[`+tc.change+`]}`),
				DecodeOptions{Now: func() time.Time { return day0 }, NewID: func() string { return "d-1" }})
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.msg)
			}
		})
	}
	var c Change
	if err := c.UnmarshalJSON([]byte(`{"kind":"board.form","id":"b","name":"B","members":["p-1","p-2"],"quorum":"2"}`)); err != nil {
		t.Fatal(err)
	}
	js, _ := c.MarshalJSON()
	if want := `{"kind":"board.form","id":"b","name":"B","members":["p-1","p-2"],"quorum":2}`; string(js) != want {
		t.Fatalf("round trip: %s, want %s", js, want)
	}
}

// run calls f with the world the test ledger loads for it, in rounds.
func (l *ledger) run(refs []Ref, f func(World) (Outcome, error)) (Outcome, error) {
	l.tb.Helper()
	w := World{}
	for attempt := 0; attempt < 8; attempt++ {
		for _, r := range refs {
			if _, ok := w[r]; !ok {
				w[r] = l.state(r)
			}
		}
		o, err := f(w)
		var ne *NeedError
		if errors.As(err, &ne) {
			refs = ne.Refs
			continue
		}
		return o, err
	}
	l.tb.Fatal("still needs more after 8 rounds")
	return Outcome{}, nil
}

func (l *ledger) record(o Outcome) {
	l.n++
	meta := o.Meta
	if meta.DecisionID == "" {
		meta.DecisionID = fmt.Sprintf("a-%04d", l.n)
	}
	for _, e := range o.Events {
		l.seq++
		l.logs[e.Aggregate] = append(l.logs[e.Aggregate], Recorded{Event: e, Meta: meta,
			EventID: fmt.Sprintf("e%d", l.seq), Sequence: l.seq, RecordedAt: l.now})
	}
}

func (l *ledger) propose(js string, ttl time.Duration) (Outcome, error) {
	d := l.parse(js)
	o, err := l.run(Plan(d), func(w World) (Outcome, error) { return Propose(w, d, l.now, ttl) })
	if err == nil {
		l.record(o)
	}
	return o, err
}

func (l *ledger) act(a Action) (Outcome, error) {
	o, err := l.run(PlanAction(a), func(w World) (Outcome, error) { return Act(w, a, l.now) })
	if err == nil {
		l.record(o)
	}
	return o, err
}

// step is one proposal action in a test: propose (JSON) or act, recorded
// hours after day0.
type step struct {
	hours   int
	propose string
	ttl     time.Duration
	act     Action
	given   string // a plain decision
}

func approve(by string) Action { return Action{Proposal: "prop", Kind: ActionApprove, By: by} }

func TestProposals(t *testing.T) {
	shift := func(amount string) string {
		return decOpts([]string{"id=prop", "by=p-0042", "authority=m-board"},
			ch("funding.shift", "period", "2026", "from", "valuestream:payments", "to", "product:payments-app", "amount", amount))
	}
	proposed := step{propose: shift("150000")}
	for _, tc := range []struct {
		name    string
		given   []step
		when    step
		then    []string // "aggregate type" of every event
		state   string
		missing int
		errAs   func(error) bool
		errIs   error
		msg     string
	}{
		{name: "a proposal waits for its quorum", when: proposed, then: []string{"proposal:prop proposal.opened"}, state: ProposalPending, missing: 1},
		{name: "a proposal that cannot be decided now is refused at once", when: step{propose: shift("250000")},
			errAs: isA[*ChangeError](), msg: "valuestream:payments holds 200000.00, cannot take 250000.00"},
		{name: "a proposal above the mandate's limit is refused at once", when: step{propose: decOpts([]string{"id=prop", "by=p-0042", "authority=m-board"},
			ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "250000.01"))},
			errAs: isA[*LimitError](), msg: "above the mandate's limit of 250000 per decision"},
		{name: "a non-member cannot propose", given: []step{{given: dec(ch("person.join", "id", "p-x", "name", "X", "team", "t-lending"))}},
			when:  step{propose: decOpts([]string{"id=prop", "by=p-x", "authority=m-board"}, ch("funding.shift", "period", "2026", "from", "valuestream:payments", "to", "product:payments-app", "amount", "1"))},
			errAs: isA[*AuthorityError]()},
		{name: "the same proposal twice", given: []step{proposed}, when: proposed, errAs: isA[*DuplicateProposalError]()},
		{name: "the quorum decides it", given: []step{proposed}, when: step{hours: 1, act: approve("p-owner")},
			then:  []string{"proposal:prop proposal.decided", "budget:2026 funding.shifted", "decision:prop decision.recorded"},
			state: ProposalDecided},
		{name: "a non-member cannot approve", given: []step{proposed, {given: dec(ch("person.join", "id", "p-x", "name", "X", "team", "t-lending"))}},
			when: step{act: approve("p-x")}, errAs: isA[*ApprovalError](), errIs: ErrUnauthorized,
			msg: "proposal prop: p-x is not a member of board portfolio; its members (p-0042, p-0043, p-owner) may approve it"},
		{name: "a member approves once", given: []step{proposed}, when: step{act: approve("p-0042")}, errAs: isA[*ApprovalError](),
			msg: "p-0042 has approved it already (a member approves once); it waits for 1 more approvals from other members"},
		{name: "a member who left cannot approve", given: []step{proposed, {given: dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-lending"))},
			{given: dec(ch("board.add-member", "board", "portfolio", "person", "p-new"))}, {given: dec(ch("person.leave", "person", "p-new"))}},
			when: step{act: approve("p-new")}, errAs: isA[*ApprovalError](), msg: "p-new is gone (left the organisation); another member"},
		{name: "an expired proposal cannot be approved", given: []step{proposed}, when: step{hours: 14 * 24, act: approve("p-owner")},
			errAs: isA[*ProposalClosedError](), errIs: ErrRefused, msg: "proposal prop is expired since 2026-01-15T00:00:00Z"},
		{name: "--expires shortens the life", given: []step{{propose: shift("1"), ttl: time.Hour}}, when: step{hours: 2, act: approve("p-owner")},
			errAs: isA[*ProposalClosedError](), msg: "expired"},
		{name: "a proposal that no longer fits is refused when the quorum is reached",
			given: []step{proposed, {given: dec(ch("funding.release", "period", "2026", "from", "valuestream:payments", "amount", "100000"))}},
			when:  step{hours: 1, act: approve("p-owner")},
			then:  []string{"proposal:prop proposal.refused"}, state: ProposalRefused},
		{name: "a proposal under a suspended mandate is refused when the quorum is reached",
			given: []step{proposed, {given: dec(ch("mandate.revoke", "mandate", "m-board"))}},
			when:  step{hours: 1, act: approve("p-owner")},
			then:  []string{"proposal:prop proposal.refused"}, state: ProposalRefused},
		{name: "a refused proposal is closed", given: []step{proposed, {given: dec(ch("mandate.revoke", "mandate", "m-board"))}, {act: approve("p-owner")}},
			when: step{act: approve("p-0043")}, errAs: isA[*ProposalClosedError](), msg: "proposal prop is refused"},
		{name: "a member rejects", given: []step{proposed}, when: step{act: Action{Proposal: "prop", Kind: ActionReject, By: "p-0043", Reason: "not now"}},
			then: []string{"proposal:prop proposal.rejected"}, state: ProposalRejected},
		{name: "a rejection needs a reason", given: []step{proposed}, when: step{act: Action{Proposal: "prop", Kind: ActionReject, By: "p-0043"}},
			errAs: isA[*FieldError](), msg: "reason: is empty"},
		{name: "a non-member cannot reject", given: []step{proposed, {given: dec(ch("person.join", "id", "p-x", "name", "X", "team", "t-lending"))}},
			when: step{act: Action{Proposal: "prop", Kind: ActionReject, By: "p-x", Reason: "no"}}, errAs: isA[*ApprovalError]()},
		{name: "the proposer withdraws", given: []step{proposed}, when: step{act: Action{Proposal: "prop", Kind: ActionWithdraw, By: "p-0042"}},
			then: []string{"proposal:prop proposal.withdrawn"}, state: ProposalWithdrawn},
		{name: "only the proposer withdraws", given: []step{proposed}, when: step{act: Action{Proposal: "prop", Kind: ActionWithdraw, By: "p-owner"}},
			errAs: isA[*ApprovalError](), msg: "only p-0042 may withdraw it"},
		{name: "nothing after a withdrawal", given: []step{proposed, {act: Action{Proposal: "prop", Kind: ActionWithdraw, By: "p-0042"}}},
			when: step{act: approve("p-owner")}, errAs: isA[*ProposalClosedError](), msg: "is withdrawn"},
		{name: "an unknown proposal", when: step{act: approve("p-owner")}, errAs: isA[*NotFoundError](), errIs: ErrNotFound},
		{name: "approvals of members removed since do not count",
			given: []step{proposed, {given: dec(ch("board.remove-member", "board", "portfolio", "person", "p-0042"))}},
			when:  step{act: approve("p-owner")}, then: []string{"proposal:prop proposal.approved"}, state: ProposalPending, missing: 1},
		{name: "a decided proposal is closed", given: []step{proposed, {act: approve("p-owner")}},
			when: step{act: approve("p-0043")}, errAs: isA[*ProposalClosedError](), msg: "proposal prop is decided"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := orgFixture(t)
			l.must(formBoard)
			l.must(boardMandate)
			do := func(s step) (Outcome, error) {
				l.now = day0.Add(time.Duration(s.hours) * time.Hour)
				switch {
				case s.given != "":
					evs, err := l.try(s.given)
					return Outcome{Events: evs}, err
				case s.propose != "":
					return l.propose(s.propose, s.ttl)
				}
				return l.act(s.act)
			}
			for i, s := range tc.given {
				if _, err := do(s); err != nil {
					t.Fatalf("given step %d: %v", i, err)
				}
			}
			o, err := do(tc.when)
			wantErr := tc.errAs != nil || tc.errIs != nil || tc.msg != ""
			if !wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				var got []string
				for _, e := range o.Events {
					got = append(got, e.Aggregate.String()+" "+e.Type)
				}
				if !slices.Equal(got, tc.then) {
					t.Fatalf("events:\n got  %q\n want %q", got, tc.then)
				}
				if o.Proposal.State != tc.state || o.Missing != tc.missing {
					t.Fatalf("state %s missing %d, want %s %d", o.Proposal.State, o.Missing, tc.state, tc.missing)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got events %v", o.Events)
			}
			if tc.errAs != nil && !tc.errAs(err) {
				t.Fatalf("error %T %v is not the wanted type", err, err)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Fatalf("error %v does not wrap %v", err, tc.errIs)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

// TestProposalDecidedRecordsApproversAndChain: the decision a quorum
// decided records who approved it and its authority chain as it was.
func TestProposalDecidedRecordsApproversAndChain(t *testing.T) {
	l := orgFixture(t)
	l.must(formBoard)
	l.must(boardMandate)
	if _, err := l.propose(decOpts([]string{"id=prop", "by=p-0042", "authority=m-board"},
		ch("funding.shift", "period", "2026", "from", "valuestream:payments", "to", "product:payments-app", "amount", "1000")), 0); err != nil {
		t.Fatal(err)
	}
	o, err := l.act(approve("p-0043"))
	if err != nil || !o.Decided() {
		t.Fatalf("approve: %v %+v", err, o.Proposal)
	}
	rec := l.state(ref(KindDecision, "prop")).Decision.Record
	if !slices.Equal(rec.Approvers, []string{"p-0042", "p-0043"}) {
		t.Fatalf("approvers %v", rec.Approvers)
	}
	want := []ChainLink{{Mandate: "m-board", Holder: "board:portfolio"}, {Mandate: RootMandate, Holder: rootActor}}
	if !slices.Equal(rec.AuthorityChain, want) {
		t.Fatalf("chain %v, want %v", rec.AuthorityChain, want)
	}
	if o.Meta.DecisionID != "prop" || o.Meta.By != "p-0042" {
		t.Fatalf("meta %+v: want the decision's", o.Meta)
	}
	p := l.state(ref(KindProposal, "prop")).Proposal
	if p.State != ProposalDecided || len(p.Approvals) != 2 {
		t.Fatalf("proposal %+v", p)
	}
}
