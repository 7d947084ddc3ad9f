package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koers/eventstore"
	"koers/feed"
	"koers/internal/pgserver"
	"koers/projections"
)

// statusOut is what `koers status --json` prints: where the ledger is and
// how far everything that follows it has come.
type statusOut struct {
	Ledger       string       `json:"ledger"`
	DataFolder   string       `json:"data_folder"`
	NATS         natsOut      `json:"nats"`
	LastSequence uint64       `json:"last_sequence"`
	SealKey      sealKeyOut   `json:"seal_key"`
	NamesKey     namesKeyOut  `json:"names_key"`
	Database     databaseOut  `json:"database"`
	Projector    projectorOut `json:"projector"`
	Feeds        []feedOut    `json:"feeds"`
}

type natsOut struct {
	// Mode is "embedded" (the data folder's own server) or "url".
	Mode          string `json:"mode"`
	URL           string `json:"url,omitempty"`
	Store         string `json:"store,omitempty"`
	HolderPID     int    `json:"holder_pid,omitempty"`
	HolderAddress string `json:"holder_address,omitempty"`
	// HolderIsStatus: no other Koers process ran the server, so this
	// command started it for the time it ran.
	HolderIsStatus bool   `json:"holder_is_status,omitempty"`
	ServerVersion  string `json:"server_version"`
	Replicas       int    `json:"replicas"`
}

// namesKeyOut is the names key file and the key bucket it wraps (see
// README, Personal data).
type namesKeyOut struct {
	File    string `json:"file"`
	Present bool   `json:"present"`
	Bucket  string `json:"bucket"`
}

type sealKeyOut struct {
	File string `json:"file"`
	// Fingerprint is the ledger's public seal key's id (the first 16 hex
	// digits of its SHA-256, as `koers keys list` shows it): the key in
	// force as the log records it, since status reads no private key;
	// "not needed to read" on a log that records none.
	Fingerprint string `json:"fingerprint"`
	// Present tells whether the private key file is there, as writers
	// need it (status only looks, it does not read it).
	Present bool `json:"present"`
}

type databaseOut struct {
	URL     string      `json:"url"` // without a password
	Schema  string      `json:"schema"`
	Private *privateOut `json:"private_postgres,omitempty"`
}

type privateOut struct {
	Dir     string `json:"dir"`
	Running bool   `json:"running"`
	Stop    string `json:"stop"`
}

type projectorOut struct {
	Checkpoint uint64 `json:"checkpoint"`
	Lag        uint64 `json:"lag"`
	// OtherLedger names the ledger the read models were built from when it
	// is not this one.
	OtherLedger string `json:"other_ledger,omitempty"`
	// Active is the session holding the projector's lease (the process
	// and host whose projector writes the read models), since ActiveSince;
	// empty while none does.
	Active      string     `json:"active,omitempty"`
	ActiveSince *time.Time `json:"active_since,omitempty"`
}

type feedOut struct {
	Name       string `json:"name"`
	Target     string `json:"target"`
	Checkpoint uint64 `json:"checkpoint"`
	Lag        uint64 `json:"lag"`
}

func statusCmd(s *settings) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Where the ledger is and how far the read models and feeds have come",
		Long: `Show the ledger: its stream and data folder, the NATS server (the folder's
embedded one and the process that runs it, or --nats-url with the server's
version) and the stream's replicas, the last sequence, the seal key file
and its fingerprint (the id of the ledger's public key in force, from the
log: status reads no private key), the read models' database and the
projector's checkpoint and lag (and which process's projector holds the lease
and writes them, when a serve runs), each feed's checkpoint and lag, and a private PostgreSQL in the data folder:
whether it runs and the command that stops it. Status changes nothing: the
read models are not brought up to date.`,
		Example: `  koers status
  koers --data /srv/koers status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// Whether a private cluster runs, before anything could start it.
			private := pgserver.Cluster(s.dataDir)
			a, err := openApp(ctx, *s.reading())
			if err != nil {
				return err
			}
			defer a.Close()
			abs, _ := filepath.Abs(s.dataDir)
			out := statusOut{Ledger: s.ledger, DataFolder: abs, Feeds: []feedOut{}}
			if out.LastSequence, err = a.store.LastSequence(ctx); err != nil {
				return err
			}
			out.NATS = natsOut{Mode: "embedded", ServerVersion: a.nc.ConnectedServerVersion(), Replicas: a.store.Config().Replicas}
			if rep, err := a.store.Replicas(ctx); err == nil {
				out.NATS.Replicas = rep
			}
			if s.natsURL != "" {
				out.NATS.Mode, out.NATS.URL = "url", redactURL(s.natsURL)
			} else {
				out.NATS.Store = filepath.Join(abs, "nats")
				if info, err := eventstore.ReadServerInfo(s.dataDir); err == nil {
					out.NATS.HolderPID, out.NATS.HolderAddress = info.PID, info.Address
					out.NATS.HolderIsStatus = info.PID == os.Getpid()
				}
			}
			out.SealKey = sealKeyOut{File: a.keyFile, Fingerprint: a.keyPrint}
			if _, err := os.Stat(a.keyFile); err == nil {
				out.SealKey.Present = true
			}
			out.NamesKey = namesKeyOut{File: s.namesKeyPath(), Bucket: s.ledger + "_KEYS"}
			if _, err := os.Stat(out.NamesKey.File); err == nil {
				out.NamesKey.Present = true
			}
			if private.Exists {
				out.Database.Private = &privateOut{Dir: private.Dir, Running: private.Running, Stop: private.Stop}
			}
			db, err := a.readModels(ctx)
			if err != nil {
				return err
			}
			out.Database.URL, out.Database.Schema = redactURL(a.dbURL), db.Schema()
			if out.Database.Private != nil {
				out.Database.Private.Running = pgserver.Cluster(s.dataDir).Running
			}
			if out.Projector.Checkpoint, err = db.Checkpoint(ctx); err != nil {
				return err
			}
			out.Projector.Lag = out.LastSequence - min(out.LastSequence, out.Projector.Checkpoint)
			if holder, since, ok, err := db.LeaseHolder(ctx); err != nil {
				return err
			} else if ok {
				out.Projector.Active, out.Projector.ActiveSince = holder, &since
			}
			have, err := db.LedgerIdentity(ctx)
			if err != nil {
				return err
			}
			want, err := projections.IdentityOf(ctx, a.store)
			if err != nil {
				return err
			}
			if !have.IsZero() && !have.Same(want) {
				out.Projector.OtherLedger = have.String()
			}
			feeds, err := feed.ReadStatus(ctx, a.store, a.dbURL)
			if err != nil {
				return err
			}
			for _, f := range feeds {
				out.Feeds = append(out.Feeds, feedOut{Name: f.Name, Target: f.Target, Checkpoint: f.Checkpoint, Lag: f.Lag})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			printStatus(cmd, out)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStatus(cmd *cobra.Command, st statusOut) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ledger\t%s\n", st.Ledger)
	fmt.Fprintf(tw, "data folder\t%s\n", st.DataFolder)
	switch {
	case st.NATS.Mode == "url":
		fmt.Fprintf(tw, "NATS\t%s (server %s), %d replicas\n", st.NATS.URL, st.NATS.ServerVersion, st.NATS.Replicas)
	case st.NATS.HolderIsStatus:
		fmt.Fprintf(tw, "NATS\tembedded in %s (server %s), %d replica; no Koers process runs it now (this command did, while it ran)\n",
			st.NATS.Store, st.NATS.ServerVersion, st.NATS.Replicas)
	default:
		fmt.Fprintf(tw, "NATS\tembedded in %s (server %s), %d replica; run by process %d on %s\n",
			st.NATS.Store, st.NATS.ServerVersion, st.NATS.Replicas, st.NATS.HolderPID, st.NATS.HolderAddress)
	}
	fmt.Fprintf(tw, "last sequence\t%d\n", st.LastSequence)
	missing := ""
	if !st.SealKey.Present {
		missing = "; the file is missing: queries and verify need none, writers do"
	}
	fmt.Fprintf(tw, "seal key\t%s (fingerprint %s%s)\n", st.SealKey.File, st.SealKey.Fingerprint, missing)
	missing = ""
	if !st.NamesKey.Present {
		missing = "; the file is missing: verify needs none, writers and the projector do"
	}
	fmt.Fprintf(tw, "names key\t%s (wraps the data keys in bucket %s%s)\n", st.NamesKey.File, st.NamesKey.Bucket, missing)
	fmt.Fprintf(tw, "database\t%s, schema %s\n", st.Database.URL, st.Database.Schema)
	if p := st.Database.Private; p != nil {
		state := "not running"
		if p.Running {
			state = "running; stop it with: " + p.Stop
		}
		fmt.Fprintf(tw, "private PostgreSQL\t%s: %s\n", p.Dir, state)
	}
	proj := fmt.Sprintf("checkpoint %d, lag %d", st.Projector.Checkpoint, st.Projector.Lag)
	if st.Projector.Lag > 0 {
		proj += " (the next query or koers serve catches up)"
	}
	if st.Projector.OtherLedger != "" {
		proj += "; built from another ledger, " + st.Projector.OtherLedger + ": run koers rebuild"
	}
	fmt.Fprintf(tw, "read models\t%s\n", proj)
	if st.Projector.Active != "" {
		fmt.Fprintf(tw, "active projector\t%s, since %s\n", strings.TrimPrefix(st.Projector.Active, "koers-lease "),
			st.Projector.ActiveSince.Format(time.RFC3339))
	}
	if len(st.Feeds) == 0 {
		fmt.Fprintf(tw, "feeds\tnone\n")
	}
	for _, f := range st.Feeds {
		fmt.Fprintf(tw, "feed %s\t%s: checkpoint %d, lag %d\n", f.Name, f.Target, f.Checkpoint, f.Lag)
	}
	tw.Flush()
}

var passwordKV = regexp.MustCompile(`(?i)(password=)\S+`)

// redactURL hides a password in a URL or a key=value connection string.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return passwordKV.ReplaceAllString(s, "${1}xxxxx")
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of koers and what it was built with",
		Example: "  koers version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}

// versionLine is the module version (or the commit it was built from),
// Go's version and the embedded nats-server's.
func versionLine() string {
	v, rev, dirty, nats := "(devel)", "", false, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, st := range bi.Settings {
			switch st.Key {
			case "vcs.revision":
				rev = st.Value
			case "vcs.modified":
				dirty = st.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/nats-io/nats-server/v2" {
				nats = d.Version
			}
		}
	}
	var parts []string
	parts = append(parts, "koers "+v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+changes"
		}
		parts = append(parts, "commit "+rev)
	}
	parts = append(parts, runtime.Version())
	if nats != "" {
		parts = append(parts, "embedded nats-server "+nats)
	}
	return strings.Join(parts, ", ")
}
