package redisstore

// QueuedSets is the number of sets waiting for the next pipeline.
func QueuedSets(s *Store) int { return s.sets.Queued() }
