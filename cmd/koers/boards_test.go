package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const boardSetup = `{"id":"setup","by":"p-ceo","authority":"root","reason":"start","effective":"2026-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"person.join","id":"p-ada","name":"Ada","team":"t-core"},
 {"kind":"person.join","id":"p-bo","name":"Bo","team":"t-core"},
 {"kind":"person.join","id":"p-cy","name":"Cy","team":"t-core"},
 {"kind":"person.join","id":"p-zed","name":"Zed","team":"t-core"},
 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-ada"},
 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"400000.00"},
 {"kind":"board.form","id":"portfolio","name":"Portfolio board","members":["p-ada","p-bo","p-cy"],"quorum":2},
 {"kind":"mandate.grant","id":"m-board","holder":"board:portfolio","kinds":["funding.*"],"scope":"*","limit":"300000.00"}]}`

func shiftArgs(id, amount string, extra ...string) []string {
	return append([]string{"decide", "funding.shift", "--decision-id", id, "--by", "p-ada", "--authority", "m-board", "--reason", "fund the app",
		"--period", "2026", "--from", "valuestream:payments", "--to", "product:pay-app", "--amount", amount}, extra...)
}

// TestBoardProposalsApprovedRefusedAndExpired: a decision under a board's
// mandate waits for its quorum; approved, it is recorded with its
// approvers and chain; one whose money moved meanwhile is refused when the
// quorum is reached; one left alone expires.
func TestBoardProposalsApprovedRefusedAndExpired(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-ceo", "--effective", "2026-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := koers(t, data, strings.ReplaceAll(boardSetup, "\n", ""), "apply", "-f", "-"); code != 0 {
		t.Fatalf("setup: %d %s %s", code, out, errOut)
	}

	// Approved by quorum.
	code, out, errOut := koers(t, data, "", shiftArgs("fund-app", "250000.00")...)
	if code != 0 || !strings.Contains(out, "decision fund-app recorded as a proposal of board portfolio") ||
		!strings.Contains(out, "it waits for 1 more approvals (quorum 2)") {
		t.Fatalf("propose: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = koers(t, data, "", shiftArgs("fund-app", "250000.00")...)
	if code != 0 || !strings.Contains(out, "is a proposal already (pending, waits for 1 more approvals") {
		t.Fatalf("propose again: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = koers(t, data, "", "approve", "fund-app", "--by", "p-zed")
	if code != 1 || !strings.Contains(errOut, "p-zed is not a member of board portfolio; its members (p-ada, p-bo, p-cy) may approve it") {
		t.Fatalf("approve by a non-member: exit %d\n%s", code, errOut)
	}
	code, _, errOut = koers(t, data, "", "approve", "fund-app", "--by", "p-ada")
	if code != 1 || !strings.Contains(errOut, "has approved it already") {
		t.Fatalf("approve twice: exit %d\n%s", code, errOut)
	}
	code, out, errOut = koers(t, data, "", "approve", "fund-app", "--by", "p-bo", "--reason", "agreed in the board")
	if code != 0 || !strings.Contains(out, "proposal fund-app approved by p-bo: quorum reached, decision fund-app recorded") ||
		!strings.Contains(out, "approved by p-ada, p-bo") {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = koers(t, data, "", "audit", "--kind", "funding.shift")
	if code != 0 || !strings.Contains(out, "m-board → root") || !strings.Contains(out, "Ada (p-ada), Bo (p-bo)") {
		t.Fatalf("audit: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = koers(t, data, "", "funding", "2026", "--account", "product:pay-app")
	if code != 0 || !strings.Contains(out, "250000.00 EUR") {
		t.Fatalf("funding after the decision: exit %d\n%s", code, out)
	}

	// Refused at decision time: the money moved meanwhile.
	if code, out, errOut := koers(t, data, "", shiftArgs("fund-more", "100000.00")...); code != 0 {
		t.Fatalf("propose: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := koers(t, data, "", "decide", "funding.release", "--by", "p-ceo", "--authority", "root", "--reason", "cut",
		"--period", "2026", "--from", "valuestream:payments", "--amount", "100000.00"); code != 0 {
		t.Fatalf("release: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = koers(t, data, "", "approve", "fund-more", "--by", "p-cy")
	if code != 1 || !strings.Contains(out, "but refused at decision time") ||
		!strings.Contains(errOut, "proposal fund-more was refused when its quorum was reached, and is recorded as refused") ||
		!strings.Contains(errOut, "valuestream:payments holds 50000.00, cannot take 100000.00") {
		t.Fatalf("approve a proposal that no longer fits: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = koers(t, data, "", "proposals", "--state", "refused")
	if code != 0 || !strings.Contains(out, "fund-more") || !strings.Contains(out, "refused: ") || strings.Contains(out, "fund-app") {
		t.Fatalf("refused proposals: exit %d\n%s", code, out)
	}

	// Expired: judged at the next action.
	if code, out, errOut := koers(t, data, "", shiftArgs("fund-late", "1000.00", "--expires", "1s")...); code != 0 {
		t.Fatalf("propose: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(1100 * time.Millisecond) // the proposal's whole life
	code, _, errOut = koers(t, data, "", "approve", "fund-late", "--by", "p-bo")
	if code != 1 || !strings.Contains(errOut, "proposal fund-late is expired since") {
		t.Fatalf("approve an expired proposal: exit %d\n%s", code, errOut)
	}
	code, out, _ = koers(t, data, "", "proposals", "--state", "expired", "--json")
	var page struct {
		Proposals []struct{ ID, State string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Proposals) != 1 || page.Proposals[0].ID != "fund-late" {
		t.Fatalf("expired proposals: exit %d\n%s", code, out)
	}

	// Withdrawn by its proposer only.
	if code, out, errOut := koers(t, data, "", shiftArgs("fund-maybe", "1000.00")...); code != 0 {
		t.Fatalf("propose: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := koers(t, data, "", "withdraw", "fund-maybe", "--by", "p-bo"); code != 1 || !strings.Contains(errOut, "only p-ada may withdraw it") {
		t.Fatalf("withdraw by another: exit %d\n%s", code, errOut)
	}
	if code, out, errOut := koers(t, data, "", "withdraw", "fund-maybe", "--by", "p-ada"); code != 0 || !strings.Contains(out, "proposal fund-maybe withdrawn by p-ada") {
		t.Fatalf("withdraw: exit %d\n%s%s", code, out, errOut)
	}

	// Who may decide what.
	code, out, errOut = koers(t, data, "", "mandates", "--holder", "board:portfolio")
	if code != 0 || !strings.Contains(out, "m-board") || !strings.Contains(out, "in force") || !strings.Contains(out, "board:portfolio (2 of p-ada, p-bo, p-cy)") ||
		!strings.Contains(out, "root (p-ceo)") {
		t.Fatalf("mandates: exit %d\n%s%s", code, out, errOut)
	}
}
