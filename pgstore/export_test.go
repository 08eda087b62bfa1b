package pgstore

import "time"

// SetPruneHooks makes the store New builds from o wait for its prune timer
// on after (instead of time.After) and report each prune to done.
func SetPruneHooks(o *Options, after func(time.Duration) <-chan time.Time, done func(n int, err error)) {
	o.after, o.pruned = after, done
}

// Jitter is the pruner's randomized wait.
var Jitter = jitter

// SetSetsHook makes the store New builds from o call before with the number
// of rows of each statement of sets, before it runs.
func SetSetsHook(o *Options, before func(n int)) { o.beforeSets = before }

// QueuedSets is the number of sets waiting for the next statement.
func QueuedSets(s *Store) int { return s.sets.Queued() }

// QueuedReads is the number of Gets waiting for the next read.
func QueuedReads(s *Store) int { return s.reads.Queued() }

// QueuedCAS is the number of compare-and-sets waiting for the next statement.
func QueuedCAS(s *Store) int { return s.cas.Queued() }
