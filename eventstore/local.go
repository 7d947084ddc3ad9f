package eventstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats.go"
)

// A data folder's embedded server, shared by every Koers process that
// works on the folder.
//
// Two nats-servers writing one store lose acknowledged messages, so exactly
// one process at a time runs the embedded server of a data folder: the
// holder, the one that holds the store's lock (see [StartEmbedded]). It
// listens on a random loopback port, protected by a user and password kept
// in the folder with mode 0600, and writes that address into the folder.
// Every other process connects there as a client. A process's connection
// finds the server again each time it dials: when the holder exits (or is
// killed: the kernel releases its lock), the first client to dial takes
// the lock and starts the server itself, and the others follow it. A
// process that is no holder starts nothing and so keeps nothing alive.
//
// Files, in <data>/nats: LOCK (the store lock), credentials (user and
// password, 0600), server.json (the holder's address and process id, 0600).
// In <data>: koers.lock, held shared by every process on the folder, whose
// content says which NATS they use, so that a process with another
// --nats-url setting is refused instead of writing elsewhere.

// Local-server files.
const (
	folderLockFile  = "koers.lock"
	credentialsFile = "credentials"
	serverInfoFile  = "server.json"
	embeddedSetting = "embedded"
)

// ErrLocalClosed is returned by a dial after [Local.Close].
var ErrLocalClosed = errors.New("local nats: closed")

// LocalOptions configure [OpenLocal].
type LocalOptions struct {
	// DataDir is the data folder. Required.
	DataDir string
	// NATSURL is an external server or cluster; "" runs the embedded
	// server in DataDir/nats.
	NATSURL string
	// HolderWait bounds how long a dial waits for a holder that is starting
	// or stopping. Default 15s.
	HolderWait time.Duration
	// ReconnectFor bounds how long a connection keeps trying to find a
	// server after it lost one, in reconnect attempts of 250ms apart.
	// Default 60s.
	ReconnectFor time.Duration
}

// WithDefaults fills in the defaults.
func (o LocalOptions) WithDefaults() LocalOptions {
	if o.HolderWait == 0 {
		o.HolderWait = 15 * time.Second
	}
	if o.ReconnectFor == 0 {
		o.ReconnectFor = 60 * time.Second
	}
	return o
}

func (o LocalOptions) validate() error {
	switch {
	case o.DataDir == "":
		return errors.New("data folder is required")
	case o.HolderWait < 0 || o.HolderWait > 10*time.Minute:
		return fmt.Errorf("holder wait %s: want up to 10m", o.HolderWait)
	case o.ReconnectFor < 0 || o.ReconnectFor > time.Hour:
		return fmt.Errorf("reconnect for %s: want up to 1h", o.ReconnectFor)
	}
	return nil
}

// FolderInUseError is returned by [OpenLocal] when processes with another
// NATS setting already work on the data folder.
type FolderInUseError struct {
	DataDir string
	Have    string // what the processes there use: "embedded" or a URL
	Want    string
}

func (e *FolderInUseError) Error() string {
	return fmt.Sprintf("data folder %s is in use by Koers processes with %s; this one has %s: stop them or use the same --nats-url",
		e.DataDir, describeSetting(e.Have), describeSetting(e.Want))
}

func describeSetting(s string) string {
	if s == embeddedSetting {
		return "the embedded server (no --nats-url)"
	}
	return "--nats-url " + s
}

// ServerInfo is what the holder of a data folder's server writes for the
// others.
type ServerInfo struct {
	Address   string    `json:"address"` // host:port on loopback
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// Local is this process's way to a data folder's NATS: the embedded server
// (run here or by another process) or an external one.
type Local struct {
	o          LocalOptions
	folderLock *flock.Flock
	storeDir   string
	user, pass string

	mu       sync.Mutex
	embedded *Embedded // non-nil while this process is the holder
	closed   bool
}

// OpenLocal joins the data folder: it takes the folder's shared lock and
// checks that every process on it uses the same NATS. It starts no server:
// the first connection does, if no other process runs one.
func OpenLocal(o LocalOptions) (*Local, error) {
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("local nats: %w", err)
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", o.DataDir, err)
	}
	setting := strings.TrimSpace(o.NATSURL)
	if setting == "" {
		setting = embeddedSetting
	}
	lock, err := joinFolder(o.DataDir, setting, o.HolderWait)
	if err != nil {
		return nil, err
	}
	l := &Local{o: o, folderLock: lock, storeDir: filepath.Join(o.DataDir, "nats")}
	if o.NATSURL == "" {
		l.user, l.pass, err = loadOrCreateCredentials(filepath.Join(l.storeDir, credentialsFile))
		if err != nil {
			_ = lock.Unlock()
			return nil, err
		}
	}
	return l, nil
}

// joinFolder takes the folder lock shared, after writing the setting into
// it if no other process holds it. Converting a flock from exclusive to
// shared is not atomic, so the setting is read again once the shared lock
// is held: whoever wrote last is what every holder of the shared lock sees.
func joinFolder(dir, setting string, wait time.Duration) (*flock.Flock, error) {
	lock := flock.New(filepath.Join(dir, folderLockFile))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock data folder %s: %w", dir, err)
	}
	if ok {
		err := os.WriteFile(lock.Path(), []byte(setting+"\n"), 0o600)
		_ = lock.Unlock()
		if err != nil {
			return nil, fmt.Errorf("data folder %s: %w", dir, err)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		ok, err = lock.TryRLock()
		if err != nil {
			return nil, fmt.Errorf("lock data folder %s: %w", dir, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("data folder %s: still locked after %s", dir, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(lock.Path())
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	if have := strings.TrimSpace(string(b)); have != setting {
		_ = lock.Unlock()
		return nil, &FolderInUseError{DataDir: dir, Have: have, Want: setting}
	}
	return lock, nil
}

// Connect opens a connection to the folder's NATS. With the embedded
// server, every dial (the first and each reconnect) finds the current
// holder, or becomes it.
func (l *Local) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("koers")}, opts...)
	if l.o.NATSURL != "" {
		opts = append(opts, nats.Timeout(5*time.Second))
		return nats.Connect(l.o.NATSURL, opts...)
	}
	const wait = 250 * time.Millisecond
	opts = append(opts,
		nats.UserInfo(l.user, l.pass),
		nats.SetCustomDialer(l),
		nats.SkipHostLookup(),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(50*time.Millisecond, 0),
		nats.MaxReconnects(int(l.o.ReconnectFor/wait)+1),
		// The dialer itself may wait for a holder that is starting.
		nats.Timeout(l.o.HolderWait+5*time.Second),
	)
	// The URL is a placeholder: the dialer decides where to connect.
	return nats.Connect("nats://127.0.0.1:4222", opts...)
}

// Dial implements [nats.CustomDialer]: the in-process server when this
// process holds it, else the holder's address; with no holder, this
// process becomes it.
func (l *Local) Dial(_, _ string) (net.Conn, error) {
	deadline := time.Now().Add(l.o.HolderWait)
	var lastErr error
	for attempt := 0; ; attempt++ {
		conn, err := l.dialOnce()
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, ErrLocalClosed) || time.Now().After(deadline) {
			if lastErr != nil && !errors.Is(err, ErrLocalClosed) {
				err = fmt.Errorf("%w (before that: %v)", err, lastErr)
			}
			return nil, fmt.Errorf("data folder %s: no embedded server to connect to: %w", l.o.DataDir, err)
		}
		lastErr = err
		time.Sleep(min(time.Duration(attempt+1)*20*time.Millisecond, 200*time.Millisecond))
	}
}

func (l *Local) dialOnce() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrLocalClosed
	}
	if l.embedded != nil {
		return l.embedded.InProcessConn()
	}
	e, err := StartEmbedded(EmbeddedOptions{Dir: l.storeDir, Port: -1, User: l.user, Password: l.pass})
	switch {
	case err == nil:
		if err := writeServerInfo(filepath.Join(l.storeDir, serverInfoFile), e); err != nil {
			e.Shutdown()
			return nil, err
		}
		l.embedded = e
		return e.InProcessConn()
	case !errors.Is(err, ErrStoreInUse):
		return nil, err
	}
	// Another process holds the server. Its address file may be missing
	// (it is starting or stopping) or stale (it was killed and the next
	// holder has not written its own yet): both fail here and are tried
	// again.
	info, err := ReadServerInfo(l.o.DataDir)
	if err != nil {
		return nil, err
	}
	return net.DialTimeout("tcp", info.Address, 2*time.Second)
}

// Holding reports whether this process runs the data folder's server now.
func (l *Local) Holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.embedded != nil
}

// Close stops the server if this process holds it (its clients then find
// or become the next holder) and leaves the data folder. Close the
// process's connections first.
func (l *Local) Close() {
	l.mu.Lock()
	e := l.embedded
	l.embedded, l.closed = nil, true
	l.mu.Unlock()
	if e != nil {
		// Removed first, so that no client dials a server on its way out.
		_ = os.Remove(filepath.Join(l.storeDir, serverInfoFile))
		e.Shutdown()
	}
	_ = l.folderLock.Unlock()
}

// ReadServerInfo reads the address file of a data folder's holder.
func ReadServerInfo(dataDir string) (ServerInfo, error) {
	var info ServerInfo
	b, err := os.ReadFile(filepath.Join(dataDir, "nats", serverInfoFile))
	if err != nil {
		return info, fmt.Errorf("embedded server address: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("embedded server address %s: %w", serverInfoFile, err)
	}
	if _, _, err := net.SplitHostPort(info.Address); err != nil {
		return info, fmt.Errorf("embedded server address %q: %w", info.Address, err)
	}
	return info, nil
}

// writeServerInfo writes the address file whole or not at all (rename),
// so a client never reads half of it.
func writeServerInfo(path string, e *Embedded) error {
	addr, ok := e.srv.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("embedded nats: no loopback listener")
	}
	b, err := json.Marshal(ServerInfo{Address: addr.String(), PID: os.Getpid(), StartedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("embedded server address: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("embedded server address: %w", err)
	}
	return nil
}

// loadOrCreateCredentials reads the folder's NATS user and password,
// creating them with owner-only permissions on first use. O_EXCL makes
// two processes that start together agree on one.
func loadOrCreateCredentials(path string) (user, pass string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", "", fmt.Errorf("nats credentials: %w", err)
	}
	for attempt := 0; attempt < 50; attempt++ {
		b, err := os.ReadFile(path)
		if err == nil {
			user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
			if ok && user != "" && len(pass) >= 32 {
				return user, pass, nil
			}
			// Being written by another process: read again.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("nats credentials: %w", err)
		}
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return "", "", err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("nats credentials: %w", err)
		}
		pass := hex.EncodeToString(secret)
		_, werr := f.WriteString("koers " + pass + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return "", "", fmt.Errorf("nats credentials: %w", err)
		}
		return "koers", pass, nil
	}
	return "", "", fmt.Errorf("nats credentials %s: unreadable", path)
}
