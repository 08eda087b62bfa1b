package memstore

// Hooks for the external tests.

// RawLen returns how many entries the store holds, expired ones included.
func RawLen(s *Store) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// Shards returns the number of shards.
func Shards(s *Store) int { return len(s.shards) }

// SweeperDone returns the channel closed when the sweeper goroutine returns.
func SweeperDone(s *Store) <-chan struct{} { return s.done }

// Sweep runs one sweep now and returns how many sessions it deleted.
func Sweep(s *Store) int { return s.sweep(nil) }

// CheckInvariants reports the first inconsistency between a shard's table,
// entries and LRU list, or "".
func CheckInvariants(s *Store) string {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		msg := sh.check(s)
		sh.mu.Unlock()
		if msg != "" {
			return msg
		}
	}
	return ""
}

func (sh *shard) check(s *Store) string {
	used := 0
	for slot, v := range sh.table {
		if v == 0 {
			continue
		}
		used++
		idx := slotIndex(v)
		if idx < 0 || int(idx) >= len(sh.entries) {
			return "slot points past the entries"
		}
		if got, _ := sh.find(sh.entries[idx].id, uint32(s.hash(sh.entries[idx].id))); got != slot {
			return "entry not found at its slot"
		}
	}
	if used != len(sh.entries) {
		return "table and entries differ in size"
	}
	n := 0
	prev := noIndex
	for i := sh.head; i != noIndex; i = sh.entries[i].next {
		if sh.entries[i].prev != prev {
			return "broken prev link"
		}
		prev = i
		if n++; n > len(sh.entries) {
			return "LRU cycle"
		}
	}
	if n != len(sh.entries) || sh.tail != prev {
		return "LRU list does not cover the entries"
	}
	return ""
}
