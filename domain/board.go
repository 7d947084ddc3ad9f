package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// BoardState is a board: people who hold mandates together. Members are
// sorted person ids; Quorum is how many of them must approve a decision
// under a mandate the board holds.
type BoardState struct {
	Name      string
	Members   []string
	Quorum    int
	Disbanded bool
	// DisbandedAt is the effective time of the disbanding: the board's
	// mandates are suspended from then on.
	DisbandedAt time.Time
}

// boardOf returns the board id of a mandate holder "board:<id>".
func boardOf(holder string) (string, bool) {
	return strings.CutPrefix(holder, BoardHolderPrefix)
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

// board applies the board.* changes: members are active people, the quorum
// between 1 and the member count, nothing changes after the disbanding.
func (k *work) board(c Change) error {
	switch c.Kind {
	case ChangeBoardForm:
		r := ref(KindBoard, c.ID)
		if err := k.absent(r); err != nil {
			return err
		}
		for _, m := range c.Members {
			if _, err := k.active(ref(KindPerson, m)); err != nil {
				return &BoardError{Board: c.ID, Problem: fmt.Sprintf("member %s must be a person in the organisation who has not left", m), Err: err}
			}
		}
		if c.Quorum > len(c.Members) {
			return &QuorumError{Board: c.ID, Quorum: c.Quorum, Members: len(c.Members)}
		}
		return k.emit(r, EventBoardFormed, BoardFormed{ID: c.ID, Name: c.Name, Members: c.Members, Quorum: c.Quorum})
	case ChangeBoardAddMember:
		b, err := k.active(ref(KindBoard, c.Board))
		if err != nil {
			return err
		}
		if _, err := k.active(ref(KindPerson, c.Person)); err != nil {
			return &BoardError{Board: c.Board, Problem: fmt.Sprintf("member %s must be a person in the organisation who has not left", c.Person), Err: err}
		}
		if contains(b.Board.Members, c.Person) {
			return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("already has member %q", c.Person)}
		}
		n := len(b.Board.Members) + 1
		if n > MaxMembers {
			return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("would have %d members, at most %d", n, MaxMembers)}
		}
		q := b.Board.Quorum
		if c.Quorum != 0 {
			q = c.Quorum
		}
		if q > n {
			return &QuorumError{Board: c.Board, Quorum: q, Members: n}
		}
		return k.emit(b.Ref, EventBoardMemberAdded, BoardMember{Board: c.Board, Person: c.Person, Quorum: q, Previous: b.Board.Quorum})
	case ChangeBoardRemoveMember:
		b, err := k.active(ref(KindBoard, c.Board))
		if err != nil {
			return err
		}
		return k.removeMember(b, c.Person, c.Quorum)
	case ChangeBoardDisband:
		b, err := k.active(ref(KindBoard, c.Board))
		if err != nil {
			return err
		}
		return k.emit(b.Ref, EventBoardDisbanded, Lifecycle{ID: c.Board})
	}
	return fmt.Errorf("change kind %q: %w", c.Kind, ErrInvalid)
}

// removeMember removes person from board b, with quorum q afterwards (0:
// unchanged).
func (k *work) removeMember(b Aggregate, person string, q int) error {
	if !contains(b.Board.Members, person) {
		return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("has no member %q (members: %s)", person, strings.Join(b.Board.Members, ", "))}
	}
	n := len(b.Board.Members) - 1
	if n == 0 {
		return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("%q is its last member (disband the board instead)", person)}
	}
	if q == 0 {
		q = b.Board.Quorum
	}
	if q > n {
		return &QuorumError{Board: b.Ref.ID, Quorum: q, Members: n}
	}
	return k.emit(b.Ref, EventBoardMemberRemoved, BoardMember{Board: b.Ref.ID, Person: person, Quorum: q, Previous: b.Board.Quorum})
}

// undoBoardMember compensates a board.member-added or -removed.
func (k *work) undoBoardMember(a Aggregate, typ string, p *BoardMember) error {
	if _, err := k.active(a.Ref); err != nil {
		return err
	}
	if a.Board.Quorum != p.Quorum {
		return stale(a.Ref, "its quorum is %d now, not %d", a.Board.Quorum, p.Quorum)
	}
	if typ == EventBoardMemberAdded {
		if !contains(a.Board.Members, p.Person) {
			return stale(a.Ref, "%q is no longer a member", p.Person)
		}
		return k.removeMember(a, p.Person, p.Previous)
	}
	if contains(a.Board.Members, p.Person) {
		return stale(a.Ref, "%q is a member again", p.Person)
	}
	if _, err := k.active(ref(KindPerson, p.Person)); err != nil {
		return err
	}
	return k.emit(a.Ref, EventBoardMemberAdded, BoardMember{Board: a.Ref.ID, Person: p.Person, Quorum: p.Previous, Previous: a.Board.Quorum})
}

// BoardError is a board change naming someone who cannot be a member.
type BoardError struct {
	Board   string
	Problem string
	Err     error
}

func (e *BoardError) Error() string {
	s := fmt.Sprintf("board %s: %s", e.Board, e.Problem)
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}
func (e *BoardError) Unwrap() []error { return []error{e.Err, ErrRefused} }

// QuorumError is a board whose quorum would exceed its member count.
type QuorumError struct {
	Board   string
	Quorum  int
	Members int
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("board %s: quorum %d with %d members: the quorum must be between 1 and the member count (give a quorum of at most %d)",
		e.Board, e.Quorum, e.Members, e.Members)
}
func (e *QuorumError) Unwrap() error { return ErrRefused }
