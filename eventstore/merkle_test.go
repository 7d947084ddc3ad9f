package eventstore

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// mth is RFC 9162's definition, written out independently of the code
// under test (no shared split or node helpers).
func mth(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func testLeaves(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = MessageLeaf(uint64(i+1), time.Unix(0, int64(i)*1000), fmt.Sprintf("koers.t.%d", i), []byte(fmt.Sprintf(`{"i":%d}`, i)))
	}
	return out
}

func TestMerkleTreeHashMatchesRFC(t *testing.T) {
	if TreeHash(nil) != sha256.Sum256(nil) {
		t.Fatal("empty tree: want SHA-256 of nothing")
	}
	leaves := testLeaves(70)
	for n := 1; n <= 70; n++ {
		if got, want := TreeHash(leaves[:n]), mth(leaves[:n]); got != want {
			t.Fatalf("size %d: root %x, RFC says %x", n, got, want)
		}
	}
}

func TestMessageLeafIsDigestInput(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	body := []byte(`{"v":2}`)
	in := MessageLeafInput(7, at, "koers.a.b", body)
	// The digest of one message from zero is SHA-256(32 zero bytes || input).
	d := newDigest()
	d.add(7, at, "koers.a.b", body)
	if want := sha256.Sum256(append(make([]byte, 32), in...)); d.sum != want {
		t.Fatal("leaf input differs from the digest's per-message input")
	}
	if MessageLeaf(7, at, "koers.a.b", body) != sha256.Sum256(append([]byte{0}, in...)) {
		t.Fatal("leaf hash is not SHA-256(0x00 || input)")
	}
}

func TestMerkleInclusionEveryLeaf(t *testing.T) {
	leaves := testLeaves(70)
	for n := 1; n <= 70; n++ {
		root := mth(leaves[:n])
		for m := 0; m < n; m++ {
			proof := InclusionProof(leaves[:n], uint64(m))
			if !VerifyInclusion(leaves[m], uint64(m), uint64(n), proof, root) {
				t.Fatalf("size %d leaf %d: proof does not verify", n, m)
			}
			other := leaves[(m+1)%70]
			if VerifyInclusion(other, uint64(m), uint64(n), proof, root) {
				t.Fatalf("size %d leaf %d: a wrong leaf verifies", n, m)
			}
			if n > 1 && VerifyInclusion(leaves[m], uint64((m+1)%n), uint64(n), proof, root) {
				t.Fatalf("size %d leaf %d: verifies at the wrong index", n, m)
			}
			if len(proof) > 0 {
				bad := append([]Hash(nil), proof...)
				bad[len(bad)/2][3] ^= 1
				if VerifyInclusion(leaves[m], uint64(m), uint64(n), bad, root) {
					t.Fatalf("size %d leaf %d: a changed proof verifies", n, m)
				}
				if VerifyInclusion(leaves[m], uint64(m), uint64(n), proof[:len(proof)-1], root) {
					t.Fatalf("size %d leaf %d: a shortened proof verifies", n, m)
				}
			}
		}
	}
}

// A seal gives every event of its decision its path from one pass over the
// tree: the same paths as one leaf at a time, each proving its leaf in the
// root.
func TestMerkleTreeGivesEveryPathInOnePass(t *testing.T) {
	leaves := testLeaves(70)
	for n := 1; n <= 70; n++ {
		paths := make([][]Hash, n)
		root := merkleTree(leaves[:n], paths)
		if root != mth(leaves[:n]) {
			t.Fatalf("size %d: root differs from RFC 9162's", n)
		}
		for m := range n {
			want := merklePath(leaves[:n], m)
			if fmt.Sprint(paths[m]) != fmt.Sprint(want) {
				t.Fatalf("size %d leaf %d: path %x, one leaf at a time %x", n, m, paths[m], want)
			}
			if got, ok := rootFromPath(leaves[m], m, n, paths[m]); !ok || got != root {
				t.Fatalf("size %d leaf %d: the path does not lead to the root", n, m)
			}
		}
	}
}

func TestMerkleConsistency(t *testing.T) {
	leaves := testLeaves(70)
	for n := 1; n <= 70; n++ {
		newRoot := mth(leaves[:n])
		for m := 0; m <= n; m++ {
			oldRoot := mth(leaves[:m])
			proof := ConsistencyProof(leaves[:n], uint64(m))
			if !VerifyConsistency(uint64(m), uint64(n), oldRoot, newRoot, proof) {
				t.Fatalf("%d -> %d: proof does not verify", m, n)
			}
			if m == 0 || m == n {
				continue
			}
			changed := append([]Hash(nil), leaves[:n]...)
			changed[m-1][0] ^= 1 // the old tree's last leaf differs in the new one
			if VerifyConsistency(uint64(m), uint64(n), oldRoot, mth(changed), ConsistencyProof(changed, uint64(m))) {
				t.Fatalf("%d -> %d: a changed history verifies", m, n)
			}
			bad := append([]Hash(nil), proof...)
			bad[0][5] ^= 1
			if VerifyConsistency(uint64(m), uint64(n), oldRoot, newRoot, bad) {
				t.Fatalf("%d -> %d: a changed proof verifies", m, n)
			}
			if VerifyConsistency(uint64(m), uint64(n), newRoot, oldRoot, proof) {
				t.Fatalf("%d -> %d: verifies with the roots swapped", m, n)
			}
		}
	}
}
