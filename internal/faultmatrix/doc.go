// Package faultmatrix holds the fault matrix of issue 13 as a test suite:
// load against real `koers serve` processes while their parts fail — serve
// killed with -9, a separate nats-server killed with -9 and restarted, a
// three-node NATS cluster losing the stream's leader and then a follower,
// the read models' PostgreSQL stopped, a feed's webhook target down — and,
// after each scenario, the checks that nothing acknowledged was lost or
// recorded twice: every acknowledged decision is in the log exactly once
// and in the read models, the read models equal a fresh rebuild, `koers
// verify` passes and the feed's target received every event.
//
// The package has no code of its own: everything is in its tests, which
// build the koers binary and nats-server (2.12+, from the module cache)
// once with `go build` so that every process is real and can be killed.
// `go test ./internal/faultmatrix` runs the short form (fewer kills,
// shorter outages, lighter load); the long form has the counts and
// durations:
//
//	go test ./internal/faultmatrix -long -timeout 60m -v
//
// Each run logs a table of figures per scenario (sent, acknowledged,
// refused, retried, given up, lost, duplicated, recovery times), also
// written to the file named by -figures.
package faultmatrix
