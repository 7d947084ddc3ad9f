package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// The stream's Merkle tree, as a transparency log keeps one (RFC 9162,
// section 2.1): its leaves are the stream's messages in sequence order, so
// that a signed tree head (size, root) proves any message's inclusion with
// a path of about log2(size) hashes, and two tree heads prove that the
// later log extends the earlier. Pure functions, standard library only;
// leaf and node hashing are those of the decision seal (seal.go).

// Hash is one node of a Merkle tree.
type Hash = [sha256.Size]byte

// MessageLeafInput is what the stream's Merkle leaf hashes for one stored
// message: the per-message input of the stream digest (package doc,
// section Digest), sequence, recorded time in Unix nanoseconds, subject
// length (each 8 bytes big-endian), subject, SHA-256(body).
func MessageLeafInput(seq uint64, recorded time.Time, subject string, body []byte) []byte {
	b := make([]byte, 0, 24+len(subject)+sha256.Size)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(recorded.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(len(subject)))
	b = append(b, subject...)
	sum := sha256.Sum256(body)
	return append(b, sum[:]...)
}

// MessageLeaf is the leaf hash of a stored message: SHA-256(0x00 ||
// [MessageLeafInput]).
func MessageLeaf(seq uint64, recorded time.Time, subject string, body []byte) Hash {
	return sha256.Sum256(append([]byte{0}, MessageLeafInput(seq, recorded, subject, body)...))
}

// TreeHash is RFC 9162's MTH over leaf hashes: SHA-256 of nothing for no
// leaves, the leaf itself for one, else node(MTH(first k), MTH(rest)) with
// k the largest power of two smaller than the size.
func TreeHash(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	return merkleRoot(leaves)
}

// InclusionProof is RFC 9162's PATH(m, D[n]) (2.1.3.1): the audit path of
// leaf m in the tree of leaves, nearest sibling first.
func InclusionProof(leaves []Hash, m uint64) []Hash {
	if m >= uint64(len(leaves)) {
		return nil
	}
	return merklePath(leaves, int(m))
}

// VerifyInclusion is RFC 9162's check of an inclusion proof (2.1.3.2):
// whether leaf, at index m of a tree of n leaves, with proof gives root.
func VerifyInclusion(leaf Hash, m, n uint64, proof []Hash, root Hash) bool {
	if m >= n || len(proof) > 64 {
		return false
	}
	r, ok := rootFromPath(leaf, int(m), int(n), proof)
	return ok && r == root
}

// ConsistencyProof is RFC 9162's PROOF(m, D[n]) (2.1.4.1): the hashes that
// prove the tree of the first m leaves is a prefix of the tree of all of
// them. Empty for m == 0 or m == n.
func ConsistencyProof(leaves []Hash, m uint64) []Hash {
	if m == 0 || m >= uint64(len(leaves)) {
		return nil
	}
	return subproof(int(m), leaves, true)
}

func subproof(m int, leaves []Hash, complete bool) []Hash {
	n := len(leaves)
	if m == n {
		if complete {
			return nil
		}
		return []Hash{merkleRoot(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, leaves[:k], complete), merkleRoot(leaves[k:]))
	}
	return append(subproof(m-k, leaves[k:], false), merkleRoot(leaves[:k]))
}

// VerifyConsistency is RFC 9162's check of a consistency proof (2.1.4.2):
// whether the tree of size m with root oldRoot is a prefix of the tree of
// size n with root newRoot. Equal sizes need an empty proof and equal
// roots; size 0 is a prefix of everything.
func VerifyConsistency(m, n uint64, oldRoot, newRoot Hash, proof []Hash) bool {
	switch {
	case m > n || len(proof) > 128:
		return false
	case m == n:
		return len(proof) == 0 && oldRoot == newRoot
	case m == 0:
		return len(proof) == 0
	case len(proof) == 0:
		return false
	}
	if m&(m-1) == 0 { // an exact power of two: the old root is a node of the new tree
		proof = append([]Hash{oldRoot}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr)
			sr = nodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return fr == oldRoot && sr == newRoot && sn == 0
}
