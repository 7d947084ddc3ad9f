package sample_test

import (
	"context"
	"testing"

	"koers/domain"
	"koers/internal/ledgertest"
	"koers/internal/sample"
)

func TestTheHistoryIsValidDecisionAfterDecision(t *testing.T) {
	l := ledgertest.New(t)
	lines, err := sample.History(sample.Options{Seed: 1, People: 120, Teams: 16, Products: 12, Start: ledgertest.Genesis.AddDate(0, 1, 0), Years: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range lines {
		res, err := l.Handler.Submit(context.Background(), []byte(line))
		if err != nil {
			t.Fatalf("decision %d of %d refused: %v\n%s", i+1, len(lines), err, line)
		}
		if res.Proposal == nil {
			continue
		}
		// The board's decisions: proposed by the chair, approved by a second member.
		res, err = l.Handler.Act(context.Background(), domain.Action{Proposal: res.Proposal.ID, Kind: domain.ActionApprove, By: sample.Approver})
		if err != nil || res.State != domain.ProposalDecided {
			t.Fatalf("decision %d of %d: approval %+v %v\n%s", i+1, len(lines), res.Proposal, err, line)
		}
	}
	again, _ := sample.History(sample.Options{Seed: 1, People: 120, Teams: 16, Products: 12, Start: ledgertest.Genesis.AddDate(0, 1, 0), Years: 2})
	if len(again) != len(lines) || again[len(again)-1] != lines[len(lines)-1] {
		t.Fatal("the same seed gave another history")
	}
}

func TestTheDefaultHistoryIsMidSized(t *testing.T) {
	lines, err := sample.History(sample.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 300 || len(lines) > 3000 {
		t.Fatalf("%d decisions", len(lines))
	}
}
