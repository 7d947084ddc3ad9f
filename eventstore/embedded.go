package eventstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure an in-process nats-server with JetStream: the
// real server code, for the default set-up and for tests.
type EmbeddedOptions struct {
	// Dir holds the JetStream store; data in it survives restarts. Required.
	Dir string
	// Port for clients on Host. 0: no listener at all, clients connect
	// in-process only (the default, which never collides with a NATS
	// already running on the machine). -1: a random free port.
	Port int
	// Host for the client and cluster listeners. Default 127.0.0.1.
	Host string
	// Name of the server; required in a cluster. Default "koers".
	Name string
	// Cluster, when set, joins a JetStream cluster over routes.
	Cluster *EmbeddedCluster
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10s.
	ReadyTimeout time.Duration
	// User and Password, when set, are required of every client, the
	// in-process ones included. Both or neither.
	User, Password string
	// SyncInterval is how often the server flushes its store to disk.
	// Default 0: always (the server's sync_interval: always) — every write
	// is on disk (fsync) before it is acknowledged, so that an
	// acknowledged decision survives a power loss, not only a crash of
	// the process. A positive interval (nats-server's own default is 2
	// minutes) acknowledges writes from the page cache: what was
	// acknowledged since the last flush is lost when the machine goes
	// down. On this project's machine the difference is small for Koers,
	// whose every decision is an atomic batch that the server syncs when it
	// stages it anyway (koers bench: append_default_sync).
	SyncInterval time.Duration
}

// ErrStoreInUse is returned by [StartEmbedded] when another server, in
// this process or another, runs on the same store folder. Two servers
// writing one store lose acknowledged messages, so the second never starts.
var ErrStoreInUse = errors.New("the store is in use by another embedded server")

// storeLockFile, inside the store folder, is held with an exclusive lock
// (flock) for as long as a server runs on the folder. The kernel releases
// it when the process ends, however it ends, so a server killed with -9
// leaves nothing that blocks the next one.
const storeLockFile = "LOCK"

// EmbeddedCluster is one node's part of a cluster.
type EmbeddedCluster struct {
	Name   string   // cluster name, the same on every node
	Port   int      // this node's route port
	Routes []string // nats-route://host:port of every node, this one included
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv  *server.Server
	lock *flock.Flock
	user string
	pass string
}

// StartEmbedded starts a nats-server with JetStream and waits until it
// accepts clients (and, in a cluster, until JetStream is enabled).
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded nats: store folder is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Name == "" {
		o.Name = "koers"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if o.SyncInterval < 0 {
		return nil, fmt.Errorf("embedded nats: sync interval %s: want 0 (always) or more", o.SyncInterval)
	}
	if o.Port < -1 || o.Port > 65535 {
		return nil, fmt.Errorf("embedded nats: port %d: want -1, 0 or a port number", o.Port)
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		DontListen: o.Port == 0,
		JetStream:  true,
		StoreDir:   o.Dir,
		NoSigs:     true,
		NoLog:      os.Getenv("KOERS_NATS_LOG") == "",
	}
	if o.SyncInterval == 0 {
		opts.SyncAlways = true
	} else {
		opts.SyncInterval = o.SyncInterval
	}
	if (o.User == "") != (o.Password == "") {
		return nil, errors.New("embedded nats: a user needs a password and a password a user")
	}
	opts.Username, opts.Password = o.User, o.Password
	if o.Port == 0 && o.Cluster != nil {
		return nil, errors.New("embedded nats: a cluster node needs a client port (-1 for a random one)")
	}
	if c := o.Cluster; c != nil {
		if c.Name == "" || c.Port <= 0 || len(c.Routes) == 0 {
			return nil, errors.New("embedded nats: a cluster needs a name, a route port and routes")
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: o.Host, Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded nats: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	lock, err := lockStore(o.Dir)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if !opts.NoLog {
		srv.ConfigureLogger() // KOERS_NATS_LOG=1: the server's own log on stderr, for debugging
	}
	srv.Start()
	if !srv.ReadyForConnections(o.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = lock.Unlock()
		return nil, fmt.Errorf("embedded nats: not ready after %s (store %s)", o.ReadyTimeout, o.Dir)
	}
	return &Embedded{srv: srv, lock: lock, user: o.User, pass: o.Password}, nil
}

// lockStore takes the store folder's exclusive lock without waiting.
// flock locks belong to the open file, so a second server in the same
// process is refused just like one in another process.
func lockStore(dir string) (*flock.Flock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: store folder: %w", err)
	}
	lock := flock.New(filepath.Join(dir, storeLockFile))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("embedded nats: lock %s: %w", lock.Path(), err)
	}
	if !ok {
		return nil, fmt.Errorf("embedded nats: %s: %w", dir, ErrStoreInUse)
	}
	return lock, nil
}

// Connect opens a client connection: in-process when the server has no
// listener, else over loopback.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("koers")}, opts...)
	if e.user != "" {
		opts = append(opts, nats.UserInfo(e.user, e.pass))
	}
	if e.srv.ClientURL() == "" || e.srv.Addr() == nil {
		opts = append(opts, nats.InProcessServer(e.srv))
		return nats.Connect("", opts...)
	}
	return nats.Connect(e.srv.ClientURL(), opts...)
}

// ClientURL is the URL clients use, "" for an in-process-only server.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Server exposes the underlying server, for tests that need to inspect it.
func (e *Embedded) Server() *server.Server { return e.srv }

// InProcessConn is a new client connection to the server inside this
// process, without a listener; it still authenticates.
func (e *Embedded) InProcessConn() (net.Conn, error) { return e.srv.InProcessConn() }

// Shutdown stops the server cleanly and waits until it has: the store is
// flushed and can be opened again. Only then is the store's lock released.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	_ = e.lock.Unlock()
}
