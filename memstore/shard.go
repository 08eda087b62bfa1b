package memstore

import "sync"

// entry is one session. Entries live in a dense slice; deleting one moves
// the last entry into its place. prev and next link the entries in LRU
// order by index (noIndex ends the list).
type entry struct {
	id      string
	data    []byte
	expires int64 // unix milliseconds
	prev    int32 // toward the most recently used
	next    int32 // toward the least recently used
}

// shard is one lock's worth of sessions.
//
// table is an open-addressing hash table with linear probing and
// backward-shift deletion (no tombstones). A slot is 0 when empty, otherwise
// uint64(index+1)<<32 | hash32, where hash32 is the low 32 bits of the id's
// hash: probing compares the stored hash before touching the entry, and the
// home slot of a stored id is known without rehashing it.
type shard struct {
	mu         sync.Mutex
	entries    []entry
	table      []uint64
	head, tail int32 // most and least recently used; noIndex when empty
	limit      int   // most entries this shard may hold; 0 = no limit
	_          [56]byte
}

const (
	minTable = 8
	// The table grows when it would be more than loadNum/loadDen full.
	loadNum = 13
	loadDen = 16
)

func slotIndex(v uint64) int32 { return int32(v>>32) - 1 }

func slotValue(idx int32, h uint32) uint64 { return uint64(idx+1)<<32 | uint64(h) }

// find returns the slot holding id and the entry index, or the empty slot
// where id would go and noIndex. The table must not be empty.
func (sh *shard) find(id string, h uint32) (int, int32) {
	if len(sh.table) == 0 {
		return -1, noIndex
	}
	mask := len(sh.table) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		v := sh.table[i]
		if v == 0 {
			return i, noIndex
		}
		if uint32(v) == h {
			if idx := slotIndex(v); sh.entries[idx].id == id {
				return i, idx
			}
		}
	}
}

// put stores data under id, or deletes id when exp is not after now.
func (sh *shard) put(s *Store, id string, h uint32, data []byte, exp, now int64) {
	slot, idx := sh.find(id, h)
	if exp <= now {
		if idx >= 0 {
			sh.remove(s, slot, idx)
		}
		return
	}
	if idx >= 0 {
		e := &sh.entries[idx]
		e.data, e.expires = data, exp
		sh.toFront(idx)
		return
	}
	if sh.limit > 0 {
		evicted := false
		for len(sh.entries) >= sh.limit && sh.tail != noIndex {
			t := sh.tail
			sh.remove(s, sh.slotOf(s, t), t)
			evicted = true
		}
		if evicted {
			slot, _ = sh.find(id, h)
		}
	}
	if n := len(sh.entries) + 1; n*loadDen > len(sh.table)*loadNum {
		size := max(len(sh.table)*2, minTable)
		for n*loadDen > size*loadNum {
			size *= 2
		}
		sh.resize(size)
		slot, _ = sh.find(id, h)
	}
	idx = int32(len(sh.entries))
	sh.entries = append(sh.entries, entry{id: id, data: data, expires: exp, prev: noIndex, next: noIndex})
	sh.table[slot] = slotValue(idx, h)
	sh.pushFront(idx)
}

// slotOf returns the table slot of the entry at idx.
func (sh *shard) slotOf(s *Store, idx int32) int {
	slot, _ := sh.find(sh.entries[idx].id, uint32(s.hash(sh.entries[idx].id)))
	return slot
}

// resize rebuilds the table with size slots (a power of two).
func (sh *shard) resize(size int) {
	old := sh.table
	sh.table = make([]uint64, size)
	mask := size - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := int(uint32(v)) & mask
		for sh.table[i] != 0 {
			i = (i + 1) & mask
		}
		sh.table[i] = v
	}
}

// remove deletes the entry at idx, whose table slot is slot.
func (sh *shard) remove(s *Store, slot int, idx int32) {
	sh.deleteSlot(slot)
	sh.unlink(idx)
	last := int32(len(sh.entries) - 1)
	if idx != last {
		// Move the last entry into the hole and repoint its slot and links.
		lslot := sh.slotOf(s, last)
		sh.table[lslot] = slotValue(idx, uint32(sh.table[lslot]))
		e := sh.entries[last]
		sh.entries[idx] = e
		if e.prev != noIndex {
			sh.entries[e.prev].next = idx
		} else {
			sh.head = idx
		}
		if e.next != noIndex {
			sh.entries[e.next].prev = idx
		} else {
			sh.tail = idx
		}
	}
	sh.entries[last] = entry{}
	sh.entries = sh.entries[:last]
}

// deleteSlot empties slot i, shifting back later entries of its probe run
// so that every stored id stays reachable from its home slot.
func (sh *shard) deleteSlot(i int) {
	mask := len(sh.table) - 1
	j := i
	for {
		j = (j + 1) & mask
		v := sh.table[j]
		if v == 0 {
			break
		}
		k := int(uint32(v)) & mask // home slot of the entry at j
		// The entry may move back to i unless its home lies cyclically in (i, j].
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			sh.table[i] = v
			i = j
		}
	}
	sh.table[i] = 0
}

func (sh *shard) unlink(idx int32) {
	e := &sh.entries[idx]
	if e.prev != noIndex {
		sh.entries[e.prev].next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != noIndex {
		sh.entries[e.next].prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = noIndex, noIndex
}

func (sh *shard) pushFront(idx int32) {
	e := &sh.entries[idx]
	e.prev, e.next = noIndex, sh.head
	if sh.head != noIndex {
		sh.entries[sh.head].prev = idx
	}
	sh.head = idx
	if sh.tail == noIndex {
		sh.tail = idx
	}
}

func (sh *shard) toFront(idx int32) {
	if sh.head == idx {
		return
	}
	sh.unlink(idx)
	sh.pushFront(idx)
}

// reap deletes the entries that expired at or before now and returns how
// many it deleted. When most of the shard is gone it also gives memory back.
func (sh *shard) reap(s *Store, now int64) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := 0
	// Walk backwards: remove moves the last entry, already visited, into
	// the hole.
	for i := int32(len(sh.entries)) - 1; i >= 0; i-- {
		if sh.entries[i].expires <= now {
			sh.remove(s, sh.slotOf(s, i), i)
			n++
		}
	}
	sh.shrink()
	return n
}

// shrink reallocates the arrays when they are mostly empty.
func (sh *shard) shrink() {
	n := len(sh.entries)
	if c := cap(sh.entries); c > 256 && n < c/4 {
		sh.entries = append(make([]entry, 0, 2*n), sh.entries...)
	}
	size := minTable
	for (n+1)*loadDen > size*loadNum {
		size *= 2
	}
	if len(sh.table) > 256 && len(sh.table) >= 4*size {
		sh.resize(2 * size)
	}
}
