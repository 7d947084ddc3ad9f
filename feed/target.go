package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	whttp "github.com/ThreeDotsLabs/watermill-http/v2/pkg/http"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"koers/internal/pgerr"
)

// target is one parsed --to URL: how to open a Watermill publisher for it.
type target struct {
	kind     string // "amqp", "redis", "postgres", "http"
	raw      string
	redacted string   // what is shown and stored: see redact
	secrets  []string // the parts redact masks, for scrub
	// atomic: one Publish of many messages is all or nothing (one INSERT),
	// so a round publishes the whole batch at once.
	atomic bool
	open   func(ctx context.Context, topic string) (message.Publisher, error)
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, secrets and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("target: not a URL: %w", err)
	}
	if u.Host == "" && u.Scheme != "" {
		return nil, fmt.Errorf("target %s: no host", redact(u))
	}
	t := &target{raw: raw, redacted: redact(u), secrets: secretsOf(u)}
	switch strings.ToLower(u.Scheme) {
	case "amqp", "amqps":
		t.kind, t.open = "amqp", func(ctx context.Context, topic string) (message.Publisher, error) { return openAMQP(raw, topic) }
	case "redis", "rediss":
		t.kind, t.open = "redis", func(ctx context.Context, _ string) (message.Publisher, error) { return openRedis(ctx, raw) }
	case "postgres", "postgresql":
		t.kind, t.atomic, t.open = "postgres", true, func(ctx context.Context, _ string) (message.Publisher, error) { return openSQL(ctx, raw) }
	case "http", "https":
		t.kind, t.open = "http", func(context.Context, string) (message.Publisher, error) { return openHTTP(raw) }
	default:
		return nil, fmt.Errorf("target %s: scheme %.20q: want amqp, amqps, redis, rediss, postgres, postgresql, http or https", redact(u), u.Scheme)
	}
	return t, nil
}

// openAMQP publishes to a durable fanout exchange named topic, with a
// durable queue of the same name bound to it (so that nothing published
// before a consumer comes is dropped), persistent messages and publisher
// confirms: Publish returns only after the broker took the message.
func openAMQP(uri, topic string) (message.Publisher, error) {
	cfg := wamqp.NewDurablePubSubConfig(uri, func(string) string { return topic })
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = 1 // one channel, reused: opening one per publish costs three round trips
	cfg.Marshaler = wamqp.DefaultMarshaler{PostprocessPublishing: func(p amqp.Publishing) amqp.Publishing {
		p.ContentType = ContentType
		if id, ok := p.Headers[wamqp.DefaultMessageUUIDHeaderKey].(string); ok {
			p.MessageId = id
		}
		return p
	}}
	cfg.TopologyBuilder = &queueTopology{queue: topic}
	pub, err := wamqp.NewPublisher(cfg, watermill.NopLogger{})
	if err != nil {
		return nil, fmt.Errorf("amqp: %w", err)
	}
	return pub, nil
}

// queueTopology declares the feed's queue and binds it whenever the
// publisher declares the exchange.
type queueTopology struct {
	wamqp.DefaultTopologyBuilder
	queue string
}

func (q *queueTopology) ExchangeDeclare(ch *amqp.Channel, exchange string, cfg wamqp.Config) error {
	if err := q.DefaultTopologyBuilder.ExchangeDeclare(ch, exchange, cfg); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	if _, err := ch.QueueDeclare(q.queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", q.queue, err)
	}
	if err := ch.QueueBind(q.queue, "", exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", q.queue, exchange, err)
	}
	return nil
}

// openRedis appends to the Redis stream named topic (XADD, no trimming).
func openRedis(ctx context.Context, uri string) (message.Publisher, error) {
	opts, err := redis.ParseURL(uri)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, watermill.NopLogger{})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return pub, nil
}

// openSQL inserts into the table "watermill_<topic>" of another PostgreSQL
// database, the layout watermill-sql subscribers read.
func openSQL(ctx context.Context, uri string) (message.Publisher, error) {
	cfg, err := pgxpool.ParseConfig(uri)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pub, err := wsql.NewPublisher(wsql.BeginnerFromPgx(pool), wsql.PublisherConfig{
		SchemaAdapter:        targetSchema{},
		AutoInitializeSchema: true,
	}, watermill.NopLogger{})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return closeAlso{pub, pool.Close}, nil
}

// targetSchema is watermill-sql's PostgreSQL layout with a uuid column wide
// enough for event ids (decision ids are up to 64 characters, plus "/" and
// the index), JSONB payloads for warehouses, and a unique index on uuid: an
// insert that is repeated after its answer was lost (a redelivery) adds
// nothing, so the table holds every event exactly once.
type targetSchema struct{ wsql.DefaultPostgreSQLSchema }

func (s targetSchema) InsertQuery(p wsql.InsertQueryParams) (wsql.Query, error) {
	q, err := s.DefaultPostgreSQLSchema.InsertQuery(p)
	q.Query += ` ON CONFLICT ("uuid") DO NOTHING`
	return q, err
}

func (s targetSchema) SchemaInitializingQueries(p wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	table := s.MessagesTable(p.Topic)
	return []wsql.Query{
		{Query: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", wsql.DefaultSchemaInitializationLock("koers-feed"))},
		{Query: `CREATE TABLE IF NOT EXISTS ` + table + ` (
			"offset" BIGSERIAL,
			"uuid" VARCHAR(128) NOT NULL,
			"created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
			"payload" JSONB DEFAULT NULL,
			"metadata" JSON DEFAULT NULL,
			"transaction_id" xid8 NOT NULL,
			PRIMARY KEY ("transaction_id", "offset"))`},
		{Query: `CREATE UNIQUE INDEX IF NOT EXISTS "` + strings.Trim(table, `"`) + `_uuid" ON ` + table + ` ("uuid")`},
	}, nil
}

// closeAlso closes a publisher and then what it was built on.
type closeAlso struct {
	message.Publisher
	also func()
}

func (c closeAlso) Close() error {
	err := c.Publisher.Close()
	c.also()
	return err
}

// openHTTP POSTs each event as one CloudEvent (structured mode) to uri. A
// response other than 2xx is an error; see [StatusError].
func openHTTP(uri string) (message.Publisher, error) {
	client := &http.Client{Transport: statusTransport{next: http.DefaultTransport}, Timeout: 2 * time.Minute}
	pub, err := whttp.NewPublisher(whttp.PublisherConfig{
		Client: client,
		MarshalMessageFunc: func(_ string, msg *message.Message) (*http.Request, error) {
			req, err := http.NewRequestWithContext(msg.Context(), http.MethodPost, uri, bytes.NewReader(msg.Payload))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", ContentType)
			req.Header.Set(whttp.HeaderUUID, msg.UUID)
			return req, nil
		},
		DoNotLogResponseBodyOnServerError: true,
	}, watermill.NopLogger{})
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	return pub, nil
}

// StatusError is a webhook receiver's answer other than 2xx.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "receiver answered " + e.Status }

// Permanent reports whether the receiver refused this very message, so that
// sending it again cannot help: 400, 413, 415 and 422. Every other answer
// (401, 403, 404, 429, 5xx, redirects, …) says something about the receiver,
// not the message, and is retried.
func (e *StatusError) Permanent() bool {
	switch e.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// statusTransport turns an answer other than 2xx into a *StatusError, which
// the publisher's error wraps, so the feed can tell a refusal from an outage.
type statusTransport struct{ next http.RoundTripper }

func (t statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status}
}

// permanent reports whether err means the target refused the message
// itself: it goes to the poison queue instead of being retried.
func permanent(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Permanent()
	}
	return strings.HasPrefix(pgerr.Code(err), "22") // data exception: this row cannot go in
}

// DefaultName is the feed name used when none is given: the kind of the
// target ("amqp", "redis", "postgres", "http"), or "" for a URL no
// publisher takes.
func DefaultName(targetURL string) string {
	t, err := parseTarget(targetURL)
	if err != nil {
		return ""
	}
	return t.kind
}
