package pgstore

import "time"

// SetPruneHooks makes the store New builds from o wait for its prune timer
// on after (instead of time.After) and report each prune to done.
func SetPruneHooks(o *Options, after func(time.Duration) <-chan time.Time, done func(n int, err error)) {
	o.after, o.pruned = after, done
}

// Jitter is the pruner's randomized wait.
var Jitter = jitter
