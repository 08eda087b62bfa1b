package redisstore

// QueuedSets is the number of sets waiting for the next pipeline.
func QueuedSets(s *Store) int { return s.sets.queued() }

// QueuedReads is the number of Gets waiting for the next read.
func QueuedReads(s *Store) int { return s.reads.queued() }
