package keyring

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// backupFormat names the first line of a key backup.
const backupFormat = "koers-keys-v1"

// MaxBackupKeys bounds the keys one backup holds (and one restore reads).
const MaxBackupKeys = 10_000_000

type backupLine struct {
	Format string `json:"format,omitempty"`
	Ledger string `json:"ledger,omitempty"`
	Person string `json:"person,omitempty"`
	// Key is the data key wrapped by the names key ("k1:" and hex): a
	// backup is useless without the names key, and holds no plain key.
	Key string `json:"key,omitempty"`
}

// Backup writes every data key in the bucket, still wrapped, as JSON
// lines after a header line; erased persons are left out. It returns how
// many keys it wrote.
func (k *Keyring) Backup(ctx context.Context, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(backupLine{Format: backupFormat, Ledger: k.cfg.Ledger}); err != nil {
		return 0, err
	}
	lister, err := k.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, bw.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("list keys of %s: %w", k.cfg.Bucket, err)
	}
	defer lister.Stop()
	n := 0
	for person := range lister.Keys() {
		if n == MaxBackupKeys {
			return n, fmt.Errorf("key bucket %s holds more than %d keys", k.cfg.Bucket, MaxBackupKeys)
		}
		e, err := k.kv.Get(ctx, person)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // erased or removed since the listing
		}
		if err != nil {
			return n, fmt.Errorf("backup key of %s: %w", person, err)
		}
		if string(e.Value()) == erasedValue {
			continue
		}
		// Only a key this names key opens goes into the backup: a backup
		// that cannot be restored is found out now, not on the bad day.
		if _, err := k.unwrapKey(person, e.Value()); err != nil {
			return n, err
		}
		if err := enc.Encode(backupLine{Person: person, Key: string(e.Value())}); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Flush()
}

// RestoreSummary says what a restore did.
type RestoreSummary struct {
	Restored int `json:"restored"`
	// Present: the bucket had the key already.
	Present int `json:"present"`
	// Erased: the person was erased since the backup (marker in the bucket
	// or erasure in the log); their key is never restored.
	Erased []string `json:"erased,omitempty"`
}

// Restore puts the keys of a backup back into the bucket. A person erased
// since the backup (the bucket's marker, or k.Erased says the log records
// it) is skipped: a restore never brings an erased name back. A key that
// is in the bucket already is left alone.
func (k *Keyring) Restore(ctx context.Context, r io.Reader) (RestoreSummary, error) {
	var sum RestoreSummary
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		var l backupLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return sum, fmt.Errorf("key backup line %d: %w", line, err)
		}
		if line == 1 {
			if l.Format != backupFormat {
				return sum, fmt.Errorf("key backup line 1: not a Koers key backup (want format %q)", backupFormat)
			}
			if l.Ledger != k.cfg.Ledger {
				return sum, fmt.Errorf("key backup is of ledger %s, not %s", l.Ledger, k.cfg.Ledger)
			}
			continue
		}
		if line > MaxBackupKeys+1 {
			return sum, fmt.Errorf("key backup holds more than %d keys", MaxBackupKeys)
		}
		if err := domain.ValidID(l.Person); err != nil {
			return sum, fmt.Errorf("key backup line %d: person: %w", line, err)
		}
		// A key that does not open with this names key is refused before
		// anything of it is written.
		if _, err := k.unwrapKey(l.Person, []byte(l.Key)); err != nil {
			return sum, fmt.Errorf("key backup line %d: %w", line, err)
		}
		erased, present, err := k.state(ctx, l.Person)
		if err != nil {
			return sum, err
		}
		switch {
		case erased:
			sum.Erased = append(sum.Erased, l.Person)
			continue
		case present:
			sum.Present++
			continue
		}
		if _, err := k.kv.Create(ctx, l.Person, []byte(l.Key)); err != nil {
			return sum, fmt.Errorf("restore key of %s: %w", l.Person, err)
		}
		sum.Restored++
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("key backup line %d: %w", line+1, err)
	}
	if line == 0 {
		return sum, errors.New("key backup is empty")
	}
	return sum, nil
}

// state says whether person is erased (in the bucket or the log) and
// whether the bucket has their key.
func (k *Keyring) state(ctx context.Context, person string) (erased, present bool, err error) {
	cctx, cancel := withTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	e, err := k.kv.Get(cctx, person)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, false, fmt.Errorf("key of %s: %w", person, err)
	case string(e.Value()) == erasedValue:
		return true, false, nil
	default:
		return false, true, nil
	}
	if k.Erased != nil {
		erased, err := k.Erased(ctx, person)
		if err != nil {
			return false, false, fmt.Errorf("is %s erased: %w", person, err)
		}
		if erased {
			return true, false, nil
		}
	}
	return false, false, nil
}
