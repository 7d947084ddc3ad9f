package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koers/domain"
	"koers/eventstore"
	"koers/ledger"
	"koers/projections"
)

// maxLineBytes bounds one decision line in `apply`: the decoder's own limit
// plus room for white space.
const maxLineBytes = domain.MaxDecisionBytes + 1024

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	s := settings{stderr: stderr}
	root := &cobra.Command{
		Use:   "koers",
		Short: "Koers records who decided what, when, on whose authority and why",
		Long: `Koers is an event-sourced portfolio ledger. Every decision (a funding shift,
an ownership change, a team move, a project turned into a product) is recorded
as immutable, sealed and hash-chained events on NATS JetStream.

By default it runs an embedded NATS server with its store in the data folder.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.PersistentFlags()
	f.StringVar(&s.natsURL, "nats-url", envOr("KOERS_NATS_URL", ""), "NATS server or cluster URL (env KOERS_NATS_URL); empty: an embedded server in the data folder")
	f.StringVar(&s.dataDir, "data", envOr("KOERS_DATA", "./koers-data"), "data folder: embedded NATS store and the seal key file (env KOERS_DATA)")
	f.StringVar(&s.databaseURL, "database-url", envOr("KOERS_DATABASE_URL", ""), "PostgreSQL for the read models (env KOERS_DATABASE_URL); empty: libpq conventions (PGHOST, PGUSER, …), database koers, created if missing")
	f.StringVar(&s.ledger, "ledger", envOr("KOERS_LEDGER", "KOERS"), "the ledger's stream name (env KOERS_LEDGER)")
	f.StringVar(&s.keyFile, "seal-key-file", envOr("KOERS_SEAL_KEY_FILE", ""), "the ledger's private Ed25519 seal key that writers need (env KOERS_SEAL_KEY_FILE); created by init and demo only, never read by queries or verify; default <data>/seal.key")
	f.StringVar(&s.namesKeyFile, "names-key-file", envOr("KOERS_NAMES_KEY_FILE", ""), "the ledger's names key that wraps the data keys of people's names (env KOERS_NAMES_KEY_FILE); writers and the projector need it, verify does not; made with the key bucket while it holds no key; default <data>/names.key")
	f.StringVar(&s.timezone, "timezone", envOr("KOERS_TIMEZONE", "Local"), "time zone of the dates you give and the times shown, e.g. Europe/Amsterdam (env KOERS_TIMEZONE); Local: the machine's zone")

	replicas, err := strconv.Atoi(envOr("KOERS_REPLICAS", "1"))
	if err != nil {
		replicas = -1 // not a number: refused when the store validates its config
	}
	f.IntVar(&s.replicas, "replicas", replicas, "stream replicas when the ledger is created: 1 on one server, 3 on a cluster (env KOERS_REPLICAS)")

	root.AddCommand(initCmd(&s), applyCmd(&s), verifyCmd(&s), anchorCmd(&s), receiptCmd(&s), demoCmd(&s),
		decideCmd(&s), importCmd(&s), orgCmd(&s), historyCmd(&s), auditCmd(&s), fundingCmd(&s), reportCmd(&s), rebuildCmd(&s), serveCmd(&s), feedCmd(&s), benchCmd(&s), benchRebuildCmd(),
		approveCmd(&s), rejectCmd(&s), withdrawCmd(&s), proposalsCmd(&s), mandatesCmd(&s), keysCmd(&s), statusCmd(&s), versionCmd(), kpiCmd(&s), diffCmd(&s))
	root.SetFlagErrorFunc(unknownFlag)
	_ = root.RegisterFlagCompletionFunc("timezone", fixedCompletions("Local", "UTC", "Europe/Amsterdam", "Europe/London", "America/New_York"))
	root.Example = `  koers init --root p-0041
  koers decide team.form --by p-0041 --authority root --reason 'new team' --id t-core --name Core --type platform
  koers org
  koers status`
	return root
}

func initCmd(s *settings) *cobra.Command {
	var rootActor, effective, rootKeyFile string
	var requireSigs bool
	cmd := &cobra.Command{
		Use:   "init --root ACTOR",
		Short: "Create the ledger and its root mandate, held by ACTOR",
		Long: `Create the ledger (the data folder, its seal key and the stream) and record its
genesis: the root mandate, held by ACTOR. Running it again with the same root
changes nothing; with another root it is refused. Every other command but demo
works on an existing ledger only.`,
		Example: `  koers init --root p-0041
  koers --data /srv/koers init --root p-0041 --effective 2026-01-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eff, err := parseOptionalTime(effective, s.timezone)
			if err != nil {
				return fmt.Errorf("--effective: %w", err)
			}
			opts, err := rootKeyOptions(cmd, rootActor, rootKeyFile, requireSigs)
			if err != nil {
				return err
			}
			a, err := createApp(cmd.Context(), *s)
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.handler.Init(cmd.Context(), rootActor, eff, opts...)
			var exists *ledger.LedgerExistsError
			if errors.As(err, &exists) {
				return fmt.Errorf("ledger %s in %s: %w; nothing written (for another ledger give another --data or --ledger)", s.ledger, s.where(), err)
			}
			if err != nil {
				return err
			}
			if res.Duplicate {
				fmt.Fprintf(cmd.OutOrStdout(), "ledger %s already exists (created at sequences %s)\n", s.ledger, seqRange(res.Sequences))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ledger %s created: root mandate %q held by %s (sequences %s)\n", s.ledger, domain.RootMandate, rootActor, seqRange(res.Sequences))
			fmt.Fprintf(cmd.OutOrStdout(), "seal key %s (private: writers need it, back it up); public key %s, key id %s, recorded in the log\n",
				a.keyFile, a.store.PublicKey(), a.keyPrint)
			return nil
		},
	}
	cmd.Flags().StringVar(&rootActor, "root", "", "the actor who holds the root mandate (required)")
	cmd.Flags().StringVar(&effective, "effective", "", "effective date of the genesis (date or RFC 3339), for the record; the root mandate is in force from the ledger's creation whatever this date, and decisions may be backdated before it; default now")
	cmd.Flags().BoolVar(&requireSigs, "require-signatures", false, "refuse every decision that does not carry its actor's signature (the root's key is registered in the genesis, made if missing)")
	cmd.Flags().StringVar(&rootKeyFile, "key", "", "the root actor's signing key, registered in the genesis (default: the root's key in the user's configuration folder, if any)")
	_ = cmd.MarkFlagRequired("root")
	return cmd
}

// applySummary counts what an apply did.
type applySummary struct {
	Applied    int      `json:"applied"`
	Proposed   int      `json:"proposed"` // recorded as proposals, waiting for their boards' approvals
	Duplicates int      `json:"duplicates"`
	Refused    int      `json:"refused"`
	Problems   []string `json:"problems,omitempty"`
}

func applyCmd(s *settings) *cobra.Command {
	var file, expires, keyFile string
	var keepGoing, asJSON bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Record decisions from a file of JSON lines (- for standard input), in order, each atomic",
		Long: `Record decisions from a file with one decision (JSON, the public format) per line.
Each decision is atomic and idempotent by its id, so applying a file twice changes
nothing the second time. A refused line stops the run with its line number and
nothing after it is applied, unless --keep-going is given. Blank lines and lines
starting with # are skipped. SIGINT or SIGTERM stops it after the decision in
flight (exit 130): running the same command again resumes.`,
		Example: `  koers apply -f decisions.jsonl
  cat decisions.jsonl | koers apply -f - --keep-going --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in io.Reader
			total := int64(-1)
			switch file {
			case "":
				return errors.New("-f FILE is required (- for standard input)")
			case "-":
				in = cmd.InOrStdin()
			default:
				fh, err := os.Open(file)
				if err != nil {
					return err
				}
				defer fh.Close()
				in = fh
				if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() && isTerminal(cmd.ErrOrStderr()) {
					total = countLines(file)
				}
			}
			ttl, err := parseTTL(expires)
			if err != nil {
				return err
			}
			a, err := openApp(cmd.Context(), *s)
			if err != nil {
				return err
			}
			defer a.Close()
			bar := newBar(cmd.ErrOrStderr(), total, "applying", "decisions")
			sum, err := applyLines(cmd, a.handler, in, keepGoing, newSigner(keyFile), bar, ledger.Expires(ttl))
			_ = bar.Finish()
			if asJSON {
				_ = printJSON(cmd.OutOrStdout(), sum)
			} else {
				proposed := ""
				if sum.Proposed > 0 {
					proposed = fmt.Sprintf(", proposed %d (waiting for approvals)", sum.Proposed)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d%s, already recorded %d, refused %d\n", sum.Applied, proposed, sum.Duplicates, sum.Refused)
			}
			if err == nil && sum.Refused > 0 {
				return exitError{code: 1, err: fmt.Errorf("%d decisions refused", sum.Refused)}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file of JSON lines, - for standard input")
	cmd.Flags().BoolVar(&keepGoing, "keep-going", false, "report a refused line and go on with the next")
	cmd.Flags().StringVar(&keyFile, "key", "", keyHelp)
	cmd.Flags().StringVar(&expires, "expires", "", expiresHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

func verifyCmd(s *settings) *cobra.Command {
	var digest string
	var at uint64
	var asJSON, noReadModels bool
	var anchorFiles []string
	var receiptFile string
	cmd := &cobra.Command{
		Use:   "verify [--digest D --at SEQ] [--anchor FILE]... | verify --receipt FILE",
		Short: "Check every event's hash, seal, chain and place, and the stream against every anchor kept",
		Long: `Walk the whole log and check every event: well-formed, its hash matches its
content, sealed with the ledger's key in force where its decision starts (else a
forgery), chained to the previous genuine event on its aggregate (else out of
place: a replay), its id once, no sequence missing, every signed decision's
signature valid under the key its actor had registered when it was recorded, no
unsigned decision where the ledger required signatures; and the stream's
settings. Then check the stream against every anchor: the read models' (unless
--no-read-models) and each --anchor FILE written by koers anchor, whose
signature is checked with the ledger's public key from the log. A stream
shorter than an anchor, or with another digest there, is a problem. An anchor
file with a tree head (tree_size, root) is also checked against the stream's
Merkle tree, and of two such files the later is proven to extend the earlier
with an RFC 9162 consistency proof (printed). It needs no
secret: the public keys are in the log. Prints the digest of the stream at --at
(default: the last sequence); --digest with --at compares with a digest kept
earlier.
With --receipt FILE (written by koers receipt) check that receipt alone,
offline: no NATS, no PostgreSQL, no data folder; it prints the ledger key id
that signed it, to compare with one you trust.
Exit code 0 when everything checks, 2 for every integrity problem (including a
missing ledger), 1 when the check itself could not be made.`,
		Example: `  koers verify
  koers verify --at 1200 --digest 3f9a…   # the digest kept at sequence 1200
  koers verify --anchor /audit/koers-2026-07-01.json
  koers verify --receipt 2026-07-reorg.receipt.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if receiptFile != "" {
				if digest != "" || at != 0 || len(anchorFiles) > 0 {
					return errors.New("--receipt is checked on its own: without --digest, --at or --anchor")
				}
				return verifyReceipt(cmd, receiptFile, asJSON)
			}
			if digest != "" && at == 0 {
				return errors.New("--digest needs --at: the sequence the digest was taken at")
			}
			var files []eventstore.SignedAnchor
			for _, f := range anchorFiles {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--anchor: %w", err)
				}
				sa, err := eventstore.ParseSignedAnchor(b)
				if err != nil {
					return exitError{code: 2, err: fmt.Errorf("--anchor %s: %w", f, err)}
				}
				files = append(files, sa)
			}
			inspecting := *s.reading()
			inspecting.inspect = true
			a, err := openApp(cmd.Context(), inspecting)
			var none *noLedgerError
			if errors.As(err, &none) {
				// No ledger where one was known to be (its stream
				// removed): an integrity problem. Where none ever was
				// (a wrong --data or --ledger), a mistake to correct.
				if evidence := ledgerWasHere(cmd.Context(), *s, files, noReadModels); evidence != "" {
					return exitError{code: 2, err: fmt.Errorf("%w; but %s: it was removed", err, evidence)}
				}
				return err
			}
			if err != nil {
				return err
			}
			defer a.Close()
			var anchors []domain.Anchor
			var trees []eventstore.TreeHead
			var signatureProblems []eventstore.Problem // found before the walk
			for i, sa := range files {
				if err := a.store.CheckAnchorSignature(cmd.Context(), sa); err != nil {
					signatureProblems = append(signatureProblems, eventstore.Problem{Sequence: sa.Sequence, What: fmt.Sprintf("anchor %s: %v", anchorFiles[i], err)})
				}
				if sa.Ledger != s.ledger {
					signatureProblems = append(signatureProblems, eventstore.Problem{Sequence: sa.Sequence, What: fmt.Sprintf("anchor %s is of ledger %s, not %s", anchorFiles[i], sa.Ledger, s.ledger)})
				}
				anchors = append(anchors, sa.Anchor())
				if sa.TreeSize > 0 {
					trees = append(trees, eventstore.TreeHead{Size: sa.TreeSize, Root: sa.Root})
				}
			}
			if !noReadModels {
				known, problem, err := readModelAnchors(cmd.Context(), a)
				if err != nil {
					return fmt.Errorf("%w (--no-read-models checks without them)", err)
				}
				if problem != "" {
					signatureProblems = append(signatureProblems, eventstore.Problem{What: problem})
				}
				anchors = append(anchors, known...)
			}
			r, err := a.store.Verify(cmd.Context(), eventstore.VerifyOptions{At: at, Expect: digest, Anchors: anchors, TreeHeads: trees})
			if err != nil {
				return err
			}
			r.Problems = append(signatureProblems, r.Problems...)
			printReport(cmd.OutOrStdout(), r, asJSON)
			if len(anchors) > 0 && !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "checked against %d anchors\n", len(anchors))
			}
			if !asJSON {
				for _, c := range r.Consistency {
					verdict := "extends"
					if !c.OK {
						verdict = "does NOT extend"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "tree head at size %d %s the one at size %d (RFC 9162 consistency proof, %d hashes)\n",
						c.New.Size, verdict, c.Old.Size, len(c.Proof))
				}
			}
			if !r.OK() {
				return exitError{code: 2, err: fmt.Errorf("verify found %d problems", len(r.Problems)+r.MoreProblems)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&digest, "digest", "", "a digest kept earlier, to compare with")
	cmd.Flags().Uint64Var(&at, "at", 0, "the sequence to take the digest at (default: the last)")
	cmd.Flags().StringArrayVar(&anchorFiles, "anchor", nil, "an anchor file written by koers anchor, to check the stream against (repeatable)")
	cmd.Flags().StringVar(&receiptFile, "receipt", "", "a receipt written by koers receipt, to check offline")
	cmd.Flags().BoolVar(&noReadModels, "no-read-models", false, "do not check against the read models' anchors (no PostgreSQL needed)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// ledgerWasHere says what shows that the ledger s names existed (an
// anchor file of it, or read models built from it), "" when nothing does.
func ledgerWasHere(ctx context.Context, s settings, files []eventstore.SignedAnchor, noReadModels bool) string {
	for _, sa := range files {
		if sa.Ledger == s.ledger {
			return fmt.Sprintf("an anchor file says ledger %s held %d messages", s.ledger, sa.Sequence)
		}
	}
	if noReadModels {
		return ""
	}
	if _, err := os.Stat(s.dataDir); err != nil {
		return ""
	}
	look := &app{settings: s}
	defer look.Close()
	db, err := look.readModels(ctx)
	if err != nil {
		return ""
	}
	have, err := db.LedgerIdentity(ctx)
	if err != nil || have.IsZero() || have.Stream != s.ledger {
		return ""
	}
	cp, _ := db.Checkpoint(ctx)
	return fmt.Sprintf("the read models were built from ledger %s, up to sequence %d", have, cp)
}

// readModelAnchors returns every anchor the read models recorded, page by
// page, at most eventstore.MaxAnchors, and a problem when they were built
// from another ledger than the stream holds now.
func readModelAnchors(ctx context.Context, a *app) ([]domain.Anchor, string, error) {
	db, err := a.readModels(ctx)
	if err != nil {
		return nil, "", err
	}
	// Read models of another ledger: this stream replaced the one they
	// saw (removed and created again), which their anchors then show. A
	// log whose genesis cannot be read is checked all the same: verify
	// reports what is missing.
	var problem string
	if have, err := db.LedgerIdentity(ctx); err != nil {
		return nil, "", err
	} else if want, err := projections.IdentityOf(ctx, a.store); err == nil && !have.IsZero() && !want.IsZero() && !have.Same(want) {
		problem = fmt.Sprintf("the read models were built from ledger %s, but the stream now holds ledger %s: the stream was replaced (or use the read models of this ledger: --database-url)", have, want)
	}
	var out []domain.Anchor
	var after uint64
	for len(out) < eventstore.MaxAnchors {
		page, err := db.Anchors(ctx, after, projections.MaxAnchorsPage)
		if err != nil {
			return nil, "", err
		}
		out = append(out, page...)
		if len(page) < projections.MaxAnchorsPage {
			break
		}
		after = page[len(page)-1].Sequence
	}
	return out, problem, nil
}

func anchorCmd(s *settings) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "anchor [-o FILE]",
		Short: "Write a signed anchor of the stream (its last sequence, digest and Merkle tree head) for an auditor to keep elsewhere",
		Long: `Compute the stream digest and the root of the stream's Merkle tree (RFC 9162)
up to the last sequence and write them, signed with
the ledger's Ed25519 key (the key in force; its id is in the file), as JSON (format in the eventstore package doc). Keep the file
somewhere the ledger's operators cannot change it; koers verify --anchor FILE
later proves that nothing up to that sequence was changed, removed or inserted;
it checks the signature with the public key the log records, needing no secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, s, func(a *app) error {
				last, err := a.store.LastSequence(cmd.Context())
				if err != nil {
					return err
				}
				if last == 0 {
					return errors.New("the ledger is empty: nothing to anchor")
				}
				leaves, an, err := a.store.Tree(cmd.Context(), last)
				if errors.Is(err, domain.ErrIntegrity) {
					return exitError{code: 2, err: err}
				}
				if err != nil {
					return err
				}
				sa, err := a.store.SignTreeHead(cmd.Context(), an, leaves, time.Now())
				if err != nil {
					return err
				}
				b, err := json.MarshalIndent(sa, "", "  ")
				if err != nil {
					return err
				}
				b = append(b, '\n')
				if file == "" || file == "-" {
					_, err = cmd.OutOrStdout().Write(b)
					return err
				}
				if err := os.WriteFile(file, b, 0o644); err != nil {
					return fmt.Errorf("-o: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "anchor of ledger %s at sequence %d written to %s\n", s.ledger, an.Sequence, file)
				return nil
			})
		},
	}
	cmd.Example = `  koers anchor -o /audit/koers-$(date +%F).json
  koers verify --anchor /audit/koers-2026-07-01.json`
	cmd.Flags().StringVarP(&file, "output", "o", "", "file to write the anchor to (default: standard output)")
	return cmd
}

func printReport(w io.Writer, r *eventstore.Report, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(r)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "messages checked\t%d\n", r.Checked)
	fmt.Fprintf(tw, "last sequence\t%d\n", r.LastSequence)
	fmt.Fprintf(tw, "digest at %d\t%s\n", r.DigestAt, r.Digest)
	fmt.Fprintf(tw, "problems\t%d\n", len(r.Problems)+r.MoreProblems)
	tw.Flush()
	if len(r.Keys) > 0 {
		fmt.Fprintln(w)
		printKeys(w, r.Keys)
	}
	if len(r.Problems) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nSEQ\tSUBJECT\tPROBLEM")
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", p.Sequence, p.Subject, p.What)
		}
		tw.Flush()
	}
}

func parseOptionalTime(s, tz string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, err
	}
	return domain.ParseEffective(s, loc)
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }

type exitCoder interface{ ExitCode() int }

func asExitCoder(err error, target *exitCoder) bool { return errors.As(err, target) }

// withHint adds what to do for the refusals a user can act on. Authority
// refusals say it themselves (who could decide, which mandate in the chain
// is no longer in force, what headroom is left): a generic hint here gave
// wrong advice, such as asking someone else when the actor holds the root.
func withHint(err error) error {
	switch {
	case errors.As(err, new(*domain.DecisionReusedError)):
		return err
	case errors.Is(err, domain.ErrConflict):
		return fmt.Errorf("%w; another decision changed the same aggregates: submit it again", err)
	}
	return err
}

// oneLine keeps a refusal on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(withHint(err).Error()), " ")
}

const keyHelp = "the signing key of the decisions' actor (default: each actor's key in the user's configuration folder, <config>/koers/keys/<actor>.key, when it exists)"

// rootKeyOptions registers the root actor's key in the genesis when it has
// one (made when signatures are required and it has none).
func rootKeyOptions(cmd *cobra.Command, root, file string, require bool) ([]ledger.InitOption, error) {
	path := file
	if path == "" {
		p, err := actorKeyPath(root)
		if err != nil {
			return nil, err
		}
		path = p
	}
	key, missing, err := readActorKey(path)
	if err != nil {
		return nil, err
	}
	if missing && file != "" {
		return nil, fmt.Errorf("--key %s: no such file", file)
	}
	if missing && !require {
		return nil, nil
	}
	if missing {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := writeKeyFile(path, seed); err != nil {
			return nil, err
		}
		key = ed25519.NewKeyFromSeed(seed)
		fmt.Fprintf(cmd.ErrOrStderr(), "signing key of %s written to %s (keep it private; back it up)\n", root, path)
	}
	opts := []ledger.InitOption{ledger.RootKey(hex.EncodeToString(key.Public().(ed25519.PublicKey)))}
	if require {
		opts = append(opts, ledger.RequireSignatures())
	}
	return opts, nil
}
