package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

const boardStructure = `{"id":"d-board","by":"p-root","authority":"root","reason":"a portfolio board","effective":"2026-01-01",
 "changes":[{"kind":"person.join","id":"p-0002","name":"Bo","team":"t-core"},
  {"kind":"person.join","id":"p-0003","name":"Cy","team":"t-core"},
  {"kind":"board.form","id":"portfolio","name":"Portfolio board","members":["p-0001","p-0002"],"quorum":2},
  {"kind":"mandate.grant","id":"m-board","holder":"board:portfolio","kinds":["funding.*"],"scope":"*","period_limit":"100000.00"}]}`

type actionAnswer struct {
	ID        string   `json:"id"`
	State     string   `json:"state"`
	Sequences []uint64 `json:"sequences"`
	Proposal  struct {
		Missing   int      `json:"missing"`
		Approvers []string `json:"approvers"`
		Reason    string   `json:"reason"`
	} `json:"proposal"`
}

func (e *env) act(t *testing.T, id, action, body string) response {
	t.Helper()
	return e.do(t, "POST", "/v1/proposals/"+id+"/"+action, strings.NewReader(body), "Content-Type", "application/json")
}

// TestProposalsThroughTheAPI: a decision under a board's mandate is
// accepted as a proposal (202), decided by the quorum's approvals, and
// shows in the proposals, the decision log (chain, approvers) and the
// mandates.
func TestProposalsThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.record(t, structure)
	e.record(t, funding)
	e.record(t, boardStructure)

	shift := `{"id":"d-shift","by":"p-0001","authority":"m-board","reason":"fund","changes":[
	 {"kind":"funding.shift","period":"2026","from":"product:pay-app","to":"valuestream:payments","amount":"60000.00"}]}`
	r := e.post(t, shift)
	var res struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Proposal struct {
			Missing int    `json:"missing"`
			Board   string `json:"board"`
		} `json:"proposal"`
	}
	r.json(t, &res)
	if r.status != http.StatusAccepted || res.ID != "d-shift" || res.State != "pending" || res.Proposal.Missing != 1 ||
		res.Proposal.Board != "portfolio" || r.header.Get("Location") != "/v1/proposals/d-shift" {
		t.Fatalf("propose: %d %s", r.status, r.body)
	}
	if r := e.post(t, shift); r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"duplicate":true`) {
		t.Fatalf("propose again: %d %s", r.status, r.body)
	}
	if r := e.post(t, strings.Replace(shift, "d-shift", "d-shift2", 1), "If-Match", `"budget:2026@1"`); r.status == http.StatusAccepted {
		t.Fatalf("a stale If-Match still proposes: %d %s", r.status, r.body)
	}

	// Who may approve.
	p := e.act(t, "d-shift", "approve", `{"by":"p-0003"}`).problem(t, http.StatusForbidden)
	if !strings.Contains(p["detail"].(string), "p-0003 is not a member of board portfolio; its members (p-0001, p-0002) may approve it") {
		t.Fatalf("approve by a non-member: %v", p)
	}
	e.act(t, "d-shift", "approve", `{"by":"p-0001"}`).problem(t, http.StatusForbidden)
	e.act(t, "d-shift", "reject", `{"by":"p-0002"}`).problem(t, http.StatusUnprocessableEntity)
	e.act(t, "d-ghost", "approve", `{"by":"p-0002"}`).problem(t, http.StatusNotFound)
	e.act(t, "d-shift", "approve", `{"by":"p-0002","extra":1}`).problem(t, http.StatusUnprocessableEntity) // JSON, but not an action: as for a decision

	r = e.act(t, "d-shift", "approve", `{"by":"p-0002","reason":"agreed"}`)
	var a actionAnswer
	r.json(t, &a)
	if r.status != http.StatusOK || a.State != "decided" || len(a.Sequences) < 2 || !slices.Equal(a.Proposal.Approvers, []string{"p-0001", "p-0002"}) {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	e.waitApplied(t, slices.Max(a.Sequences))
	e.act(t, "d-shift", "approve", `{"by":"p-0003"}`).problem(t, http.StatusConflict)

	var d struct {
		AuthorityChain []struct{ Mandate, Holder string } `json:"authority_chain"`
		Approvers      []string                           `json:"approvers"`
	}
	e.get(t, "/v1/decisions/d-shift").json(t, &d)
	if len(d.AuthorityChain) != 2 || d.AuthorityChain[0].Mandate != "m-board" || d.AuthorityChain[0].Holder != "board:portfolio" ||
		d.AuthorityChain[1].Mandate != "root" || !slices.Equal(d.Approvers, []string{"p-0001", "p-0002"}) {
		t.Fatalf("decision: %+v", d)
	}

	// Above the period limit's headroom: refused at once, nothing written.
	p = e.post(t, `{"id":"d-big","by":"p-0002","authority":"m-board","reason":"more","changes":[
	 {"kind":"funding.shift","period":"2026","from":"product:pay-app","to":"valuestream:payments","amount":"50000.00"}]}`).problem(t, http.StatusForbidden)
	if !strings.Contains(p["detail"].(string), "40000.00 EUR headroom left") {
		t.Fatalf("above the headroom: %v", p)
	}

	// A proposal rejected.
	r = e.post(t, `{"id":"d-small","by":"p-0002","authority":"m-board","reason":"a little","changes":[
	 {"kind":"funding.shift","period":"2026","from":"product:pay-app","to":"valuestream:payments","amount":"1.00"}]}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("propose: %d %s", r.status, r.body)
	}
	r = e.act(t, "d-small", "reject", `{"by":"p-0001","reason":"not now"}`)
	r.json(t, &a)
	if r.status != http.StatusOK || a.State != "rejected" {
		t.Fatalf("reject: %d %s", r.status, r.body)
	}
	e.waitApplied(t, slices.Max(a.Sequences))

	var page struct {
		Proposals []struct {
			ID, State string
			Approvals []struct{ By, Reason string }
		} `json:"proposals"`
	}
	e.get(t, "/v1/proposals").json(t, &page)
	if len(page.Proposals) != 2 || page.Proposals[0].ID != "d-small" || page.Proposals[0].State != "rejected" ||
		page.Proposals[1].State != "decided" || page.Proposals[1].Approvals[1].Reason != "agreed" {
		t.Fatalf("proposals: %+v", page)
	}
	e.get(t, "/v1/proposals?state=decided").json(t, &page)
	if len(page.Proposals) != 1 || page.Proposals[0].ID != "d-shift" {
		t.Fatalf("decided proposals: %+v", page)
	}
	e.get(t, "/v1/proposals?state=sleeping").problem(t, http.StatusBadRequest)
	e.get(t, "/v1/proposals/d-none").problem(t, http.StatusNotFound)
	var one struct{ ID, State string }
	e.get(t, "/v1/proposals/d-small").json(t, &one)
	if one.State != "rejected" {
		t.Fatalf("proposal: %+v", one)
	}

	var ms struct {
		Mandates []struct {
			ID, State string
			Headroom  []struct{ Period, Used, Left string }
			Chain     []struct{ Mandate string }
		} `json:"mandates"`
	}
	e.get(t, "/v1/mandates?holder=board:portfolio").json(t, &ms)
	if len(ms.Mandates) != 1 || ms.Mandates[0].State != "in force" || len(ms.Mandates[0].Headroom) != 1 ||
		ms.Mandates[0].Headroom[0].Left != "40000.00" || len(ms.Mandates[0].Chain) != 2 {
		t.Fatalf("mandates: %+v", ms)
	}
	e.get(t, "/v1/mandates?holder=Board").problem(t, http.StatusBadRequest)
}
