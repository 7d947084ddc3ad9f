package projections

import (
	"context"
	"slices"
	"testing"
	"time"

	"koers/domain"
)

const boardScript = `{"id":"board","by":"p-root","authority":"root","reason":"a board","effective":"2026-01-01","changes":[
 {"kind":"person.join","id":"p-2","name":"Bob","team":"t-core"},
 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"},
 {"kind":"board.form","id":"portfolio","name":"Portfolio board","members":["p-1","p-2","p-3"],"quorum":2},
 {"kind":"mandate.grant","id":"m-board","holder":"board:portfolio","kinds":["funding.*"],"scope":"*","period_limit":"200000.00"},
 {"kind":"mandate.grant","id":"m-bob","holder":"p-2","kinds":["kpi.*"],"scope":"*"}]}`

// TestProjectorShowsProposalsMandatesAndAuthorityChains: a board proposal
// decided by its quorum shows in the audit with its chain and approvers,
// the mandates with their state and headroom, the proposals with theirs.
func TestProjectorShowsProposalsMandatesAndAuthorityChains(t *testing.T) {
	e := newLog(t)
	e.play(t, bootstrap, boardScript)
	ctx := context.Background()
	res, err := e.h.Submit(ctx, []byte(`{"id":"shift","by":"p-1","authority":"m-board","reason":"fund the app","changes":[
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"50000.00"}]}`))
	if err != nil || res.State != domain.ProposalPending {
		t.Fatalf("propose: %+v %v", res, err)
	}
	if _, err := e.h.Submit(ctx, []byte(`{"id":"later","by":"p-1","authority":"m-board","reason":"more","changes":[
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1.00"}]}`)); err != nil {
		t.Fatal(err)
	}
	db := newDB(t)
	catchUp(t, db, e.st)
	page, err := db.Proposals(ctx, ProposalFilter{State: domain.ProposalPending, Now: clock})
	if err != nil || len(page.Proposals) != 2 || page.Proposals[0].ID != "later" || page.Proposals[0].Missing != 1 {
		t.Fatalf("pending proposals: %+v %v", page, err)
	}
	if _, err := e.h.Act(ctx, domain.Action{Proposal: "shift", Kind: domain.ActionApprove, By: "p-3", Reason: "agreed"}); err != nil {
		t.Fatal(err)
	}
	catchUp(t, db, e.st)
	p, err := db.Proposal(ctx, "shift", time.Time{})
	if err != nil || p.State != domain.ProposalDecided || len(p.Approvals) != 2 || p.Approvals[1].By != "p-3" || p.Approvals[1].Reason != "agreed" {
		t.Fatalf("decided proposal: %+v %v", p, err)
	}
	d, err := db.Decision(ctx, "shift")
	if err != nil {
		t.Fatal(err)
	}
	wantChain := []domain.ChainLink{{Mandate: "m-board", Holder: "board:portfolio"}, {Mandate: "root", Holder: "p-root"}}
	if !slices.Equal(d.AuthorityChain, wantChain) || !slices.Equal(d.Approvers, []string{"p-1", "p-3"}) {
		t.Fatalf("decision chain %v approvers %v", d.AuthorityChain, d.Approvers)
	}
	// Expired: judged at the time asked.
	exp, err := db.Proposals(ctx, ProposalFilter{State: domain.ProposalExpired, Now: clock.Add(15 * 24 * time.Hour)})
	if err != nil || len(exp.Proposals) != 1 || exp.Proposals[0].ID != "later" || exp.Proposals[0].State != domain.ProposalExpired {
		t.Fatalf("expired proposals: %+v %v", exp, err)
	}

	ms, err := db.Mandates(ctx, MandateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Mandate{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	mb := byID["m-board"]
	if mb.State != MandateInForce || mb.Quorum != 2 || len(mb.Members) != 3 || len(mb.Headroom) != 1 ||
		mb.Headroom[0].Used != "50000.00" || mb.Headroom[0].Left != "150000.00" {
		t.Fatalf("m-board: %+v", mb)
	}
	e.submit(t, `{"id":"bob-leaves","by":"p-root","authority":"root","reason":"bye","changes":[{"kind":"person.leave","person":"p-2"}]}`)
	e.submit(t, `{"id":"disband","by":"p-root","authority":"root","reason":"done","changes":[{"kind":"board.disband","board":"portfolio"}]}`)
	catchUp(t, db, e.st)
	ms, err = db.Mandates(ctx, MandateFilter{Holder: "p-2"})
	if err != nil || len(ms) != 1 || ms[0].State != MandateSuspended {
		t.Fatalf("mandates of p-2 after leaving: %+v %v", ms, err)
	}
	ms, err = db.Mandates(ctx, MandateFilter{Holder: "board:portfolio"})
	if err != nil || len(ms) != 1 || ms[0].State != MandateSuspended || ms[0].Why != "its holder board:portfolio is disbanded" {
		t.Fatalf("mandates of the disbanded board: %+v %v", ms, err)
	}
	// Known before the disbanding, it was in force.
	ms, err = db.Mandates(ctx, MandateFilter{Holder: "board:portfolio", At: At{KnownAt: d.RecordedAt}})
	if err != nil || len(ms) != 1 || ms[0].State != MandateInForce {
		t.Fatalf("mandates of the board known before: %+v %v", ms, err)
	}
	var state string
	if err := db.pool.QueryRow(ctx, `SELECT state FROM `+pgxIdent(db.reporting)+`.mandates WHERE id = 'm-board'`).Scan(&state); err != nil || state != "suspended" {
		t.Fatalf("reporting.mandates: %q %v", state, err)
	}
}

func pgxIdent(s string) string { return `"` + s + `"` }
