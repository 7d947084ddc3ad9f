package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/secretfile"
	"koers/keyring"
	"koers/ledger"
)

// Actors' keys live in the user's configuration folder, one file per
// actor: <os.UserConfigDir()>/koers/keys/<actor>.key, the Ed25519 seed as
// 64 hex digits, mode 0600.

// actorKeyPath is where an actor's private key is kept.
func actorKeyPath(actor string) (string, error) {
	if err := domain.ValidID(actor); err != nil {
		return "", fmt.Errorf("actor: %w", err)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("the user's configuration folder: %w", err)
	}
	return filepath.Join(dir, "koers", "keys", actor+".key"), nil
}

// readActorKey reads a private key file (hex seed); missing reports
// whether the file does not exist.
func readActorKey(path string) (key ed25519.PrivateKey, missing bool, err error) {
	b, err := secretfile.Read(path, "signing key")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, false, fmt.Errorf("key %s: want an Ed25519 seed as %d hex digits", path, 2*ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), false, nil
}

// signer finds the key to sign a decision with: --key FILE when given
// (it must exist), else the actor's own key file when there is one.
type signer struct {
	file  string
	cache map[string]ed25519.PrivateKey
}

func newSigner(file string) *signer {
	return &signer{file: file, cache: map[string]ed25519.PrivateKey{}}
}

func (s *signer) keyFor(actor string) (ed25519.PrivateKey, error) {
	if k, ok := s.cache[actor]; ok {
		return k, nil
	}
	path, explicit := s.file, s.file != ""
	if !explicit {
		p, err := actorKeyPath(actor)
		if err != nil {
			return nil, nil //nolint:nilerr // an actor id the decision will refuse anyway: nothing to sign with
		}
		path = p
	}
	k, missing, err := readActorKey(path)
	if err != nil {
		return nil, err
	}
	if missing && explicit {
		return nil, fmt.Errorf("--key %s: no such file", path)
	}
	s.cache[actor] = k
	return k, nil
}

// sign adds the actor's signature to a decision in its public JSON format
// (and its id, generated when missing, since the signature covers it). A
// decision signed already, or whose actor has no key here, is returned as
// it is.
func (s *signer) sign(h *ledger.Handler, body []byte) ([]byte, error) {
	d, err := h.Decode(body)
	if err != nil || len(d.Signature) > 0 {
		return body, nil //nolint:nilerr // the handler refuses a malformed decision with its own message
	}
	key, err := s.keyFor(d.By)
	if err != nil || key == nil {
		return body, err
	}
	// The signature covers a person's name through its commitment: the
	// salt that makes it is chosen here and travels with the decision
	// (the ledger seals the name with it; see domain/personal.go). It is
	// derived from the actor's private key, so that it hides the name
	// from whoever lacks that key, and so that the same decision signed
	// again is the same content: a retry, not another decision.
	salted := false
	for i := range d.Changes {
		if c := &d.Changes[i]; c.Kind == domain.ChangePersonJoin && c.NameSalt == "" && !domain.IsSealedName(c.Name) {
			m := hmac.New(sha256.New, key.Seed())
			m.Write([]byte("koers-signer-salt-v1\x00" + d.ID + "\x00" + c.ID + "\x00" + c.Name))
			c.NameSalt = hex.EncodeToString(m.Sum(nil))
			salted = true
		}
	}
	msg, err := domain.CanonicalDecision(d)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return body, nil //nolint:nilerr // decoded above, so this cannot fail
	}
	m["id"], _ = json.Marshal(d.ID)
	if salted {
		if m["changes"], err = json.Marshal(d.Changes); err != nil {
			return nil, err
		}
	}
	m["signature"], _ = json.Marshal(hex.EncodeToString(ed25519.Sign(key, msg)))
	return json.Marshal(m)
}

func keysCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Actors' signing keys, the ledger's seal key and the data keys of people's names",
		Long: `The ledger's writers seal every decision with the ledger's Ed25519 key (the
seal key file); its public part is recorded in the log, so anyone can verify.
Actors sign their decisions with keys of their own, registered in the ledger.
People's names are encrypted in the log under a data key per person, kept in
the key bucket <ledger>_KEYS and wrapped by the names key file; backup and
restore copy those wrapped keys (a backup is useless without the names key).`,
		Example: `  koers keys list
  koers keys new --actor p-0041 --by p-ceo | koers apply -f -
  koers keys rotate --by p-ceo --reason "yearly rotation"
  koers keys backup -o keys-2026-12-01.jsonl
  koers keys restore keys-2026-12-01.jsonl`,
	}
	cmd.AddCommand(keysNewCmd(), keysRotateCmd(s), keysListCmd(s), keysBackupCmd(s), keysRestoreCmd(s))
	return cmd
}

func keysNewCmd() *cobra.Command {
	var actor, by, authority, reason string
	cmd := &cobra.Command{
		Use:   "new --actor ID",
		Short: "Make an actor's signing key pair and print the decision that registers it",
		Example: `  koers keys new --actor p-0041
  koers keys new --actor p-0041 --by p-ceo | koers apply -f -   # p-ceo registers it`,
		Long: `Make an Ed25519 key pair for an actor. The private key goes to the user's
configuration folder (` + "`<config>/koers/keys/<actor>.key`" + `, mode 0600), where
decide, apply and approve find it and sign that actor's decisions. The
decision that registers the public key is printed as one JSON line: record it
with ` + "`koers apply -f -`" + ` as someone whose mandate covers actor.register-key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := actorKeyPath(actor)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s has a key already (%s): a new key for the same actor is registered from another file, with --key", actor, path)
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := writeKeyFile(path, priv.Seed()); err != nil {
				return err
			}
			if by == "" {
				by = actor
			}
			if reason == "" {
				reason = "register the signing key of " + actor
			}
			d := map[string]any{"by": by, "authority": authority, "reason": reason,
				"changes": []any{map[string]string{"kind": domain.ChangeActorRegisterKey, "actor": actor, "public_key": hex.EncodeToString(pub)}}}
			fmt.Fprintf(cmd.ErrOrStderr(), "key of %s written to %s (keep it private; back it up)\nrecord the registration with: koers apply -f - (as a holder of a mandate covering actor.register-key)\n", actor, path)
			return json.NewEncoder(cmd.OutOrStdout()).Encode(d)
		},
	}
	cmd.Flags().StringVar(&actor, "actor", "", "the actor the key is for (required)")
	cmd.Flags().StringVar(&by, "by", "", "who records the registration (default the actor)")
	cmd.Flags().StringVar(&authority, "authority", domain.RootMandate, "the mandate the registration is taken under")
	cmd.Flags().StringVar(&reason, "reason", "", "why (default: register the signing key of ACTOR)")
	_ = cmd.MarkFlagRequired("actor")
	return cmd
}

func keysRotateCmd(s *settings) *cobra.Command {
	var by, reason, keyFile string
	cmd := &cobra.Command{
		Use:   "rotate --by ROOT",
		Short: "Record a successor to the ledger's seal key and switch the seal key file to it",
		Long: `Make a new seal key, record its public part in the log (a decision under the
root mandate, sealed with the current key) and put it in the seal key file; the
old key is kept next to it as <file>.retired-<id>. Events sealed before keep
verifying under the old key; from the rotation on only the new key seals.
Give the new key file to every writer and restart them: a writer with the old
key stops writing within a second of the rotation.`,
		Example: `  koers keys rotate --by p-ceo --reason "yearly rotation"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := s.sealKeyFile()
			next := path + ".next"
			// A rotation interrupted after it was recorded left its key
			// here: the same decision id records it once.
			seed, err := readSeedOrNew(next)
			if err != nil {
				return err
			}
			priv := ed25519.NewKeyFromSeed(seed)
			pub := priv.Public().(ed25519.PublicKey)
			kid := eventstore.KeyID(pub)
			if reason == "" {
				reason = "rotate the ledger's seal key"
			}
			body, err := json.Marshal(map[string]any{"id": "ledger-key-" + kid, "by": by, "authority": domain.RootMandate, "reason": reason,
				"changes": []any{map[string]string{"kind": domain.ChangeLedgerRotateKey, "public_key": hex.EncodeToString(pub)}}})
			if err != nil {
				return err
			}
			return withApp(cmd, s, func(a *app) error {
				old := a.store.PublicKey()
				signed, err := newSigner(keyFile).sign(a.handler, body)
				if err != nil {
					return err
				}
				res, err := a.handler.Submit(cmd.Context(), signed)
				if err != nil {
					return err
				}
				oldBytes, _ := hex.DecodeString(old)
				retired := path + ".retired-" + eventstore.KeyID(oldBytes)
				if err := os.Rename(path, retired); err != nil {
					return fmt.Errorf("keep the old key: %w", err)
				}
				if err := os.Rename(next, path); err != nil {
					return fmt.Errorf("the new key is recorded but still in %s: move it to %s: %w", next, path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ledger key %s succeeds %s (decision %s, sequences %s); %s holds the new key, the old one is in %s: give the new key to every writer and restart them\n",
					kid, eventstore.KeyID(oldBytes), res.DecisionID, seqRange(res.Sequences), path, retired)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "the holder of the root mandate (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (default: rotate the ledger's seal key)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the actor's signing key (default: the actor's key in the user's configuration folder, if any)")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}

// readSeedOrNew reads a seed file or writes a new one.
func readSeedOrNew(path string) ([]byte, error) {
	k, missing, err := readActorKey(path)
	if err != nil {
		return nil, err
	}
	if !missing {
		return k.Seed(), nil
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return seed, writeKeyFile(path, seed)
}

func keysListCmd(s *settings) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "The ledger's public seal keys as the log records them",
		Example: "  koers keys list\n  koers keys list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, s.reading(), func(a *app) error {
				keys := a.store.Keys()
				if asJSON {
					return printJSON(cmd.OutOrStdout(), keys)
				}
				printKeys(cmd.OutOrStdout(), keys)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the keys as JSON")
	return cmd
}

func printKeys(w interface{ Write([]byte) (int, error) }, keys []eventstore.LedgerKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tRECORDED AT\tSEALS FROM\tPUBLIC KEY")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", k.ID, k.Recorded, max(k.From, 1), k.Key)
	}
	tw.Flush()
}

// keyringOf is the app's keyring, or the error saying why there is none.
func keyringOf(a *app) (*keyring.Keyring, error) {
	switch k := a.names.(type) {
	case *keyring.Keyring:
		return k, nil
	case *noNames:
		return nil, k.err
	}
	return nil, errors.New("no key bucket")
}

func keysBackupCmd(s *settings) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Copy the data keys of people's names, still wrapped, to a file",
		Long: `Writes every data key of the key bucket, wrapped by the names key, as JSON
lines (mode 0600; an existing file is not replaced). Erased people's keys are
gone and never in a backup. Keep the names key file apart from the backup: the
backup opens nothing without it.`,
		Example: "  koers keys backup -o keys-2026-12-01.jsonl",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("give the backup file with -o FILE")
			}
			return withApp(cmd, s.reading(), func(a *app) error {
				k, err := keyringOf(a)
				if err != nil {
					return err
				}
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("key backup: %w", err)
				}
				n, err := k.Backup(cmd.Context(), f)
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(out)
					return fmt.Errorf("key backup: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d data keys of bucket %s written to %s (wrapped: restoring needs the names key %s)\n",
					n, k.Bucket(), out, a.settings.namesKeyPath())
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the backup file to write")
	return cmd
}

func keysRestoreCmd(s *settings) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Put the data keys of a key backup back into the key bucket",
		Long: `Restores the keys of a backup made by koers keys backup that the bucket lacks
(a lost or damaged bucket). The key of a person erased since the backup is never
restored: the bucket's marker or the log's person.erased says so. Keys the
bucket has are left alone. Every key must open with the names key in hand.`,
		Example: "  koers keys restore keys-2026-12-01.jsonl",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, s.reading(), func(a *app) error {
				k, err := keyringOf(a)
				if err != nil {
					return err
				}
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("key backup: %w", err)
				}
				defer f.Close()
				sum, err := k.Restore(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), sum)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored %d, already there %d, erased since and not restored %d\n",
					sum.Restored, sum.Present, len(sum.Erased))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}
