// Package consumer is the one checkpointed reader of the ledger's log. The
// projector, every feed and the benchmarks' lag measurement read the log
// through it; none has a reader loop of its own.
//
// A [Consumer] asks its owner for the checkpoint (the last stream sequence
// the owner committed), reads the log in order from the sequence after it,
// and hands the messages to the owner's handler in batches:
//
//   - A message is judged in one place (the consumer's judge): it is either
//     a genuine event or a rejected message ([domain.RejectedError]: a
//     forgery, a broken hash, a malformed envelope). Rejected messages are
//     passed on like events, so that the projector can record them and a
//     feed can skip them; both move their checkpoint past them. Any other
//     read error ends the pass.
//   - Messages are grouped into units that are never split: the events of
//     one decision (consecutive in the log, ending with its
//     decision.recorded), or one rejected message. A decision whose
//     decision.recorded never comes (it was rejected) ends where the next
//     decision begins. A unit holds at most [MaxUnitMessages] messages.
//   - Units are gathered into a [Batch] bounded by MaxEvents messages and
//     MaxBytes payload bytes (a batch always holds at least one whole unit)
//     and handed on as soon as it is full, as soon as the log has nothing
//     more at hand (following the live log, a decision is handed on when it
//     lands, not a wait later), or at the latest MaxWait after its first
//     unit.
//   - The handler commits the batch together with its checkpoint (in one
//     transaction, or after the target confirmed it) before it returns; the
//     consumer never commits anything itself. What the handler did not
//     commit is read again from the checkpoint on the next pass.
//
// A pass that fails with an error [Config.Retry] allows (by default: the
// log is unavailable, [domain.ErrLogUnavailable]) is started again from the
// checkpoint after a wait chosen by the one [Backoff] policy: capped
// exponential with jitter, for a bounded number of attempts in a row
// without progress. Any other error, or the last attempt's, is returned.
//
// [Consumer.Run] follows the live log until its context ends and then
// returns nil; [Consumer.CatchUp] reads up to the log's last sequence at
// the call and returns.
package consumer
