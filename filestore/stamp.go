package filestore

import (
	"io/fs"
	"os"
	"time"
)

// A file galleta writes or touches carries a stamp in its timestamps:
//
//	mtime = expiry, whole milliseconds + stampNanos
//	atime = mtime + 1ms
//
// so the reaper can tell from a stat alone that galleta was the last to
// write the file, and its expiry is exactly the mtime (no need to read it
// for Node's rule). A file Node writes has atime == mtime (a new inode) or
// an atime set by a read, and arbitrary sub-millisecond digits: it never
// carries the stamp by chance in practice. Where the stamp is lost (a file
// system with coarse timestamps, a strictatime mount updating atime on
// reads, a copy), the file is simply read, as Node's files are.
const stampNanos = 424242

func stampTimes(expires time.Time) (atime, mtime time.Time) {
	mtime = expires.Truncate(time.Millisecond).Add(stampNanos)
	return mtime.Add(time.Millisecond), mtime
}

// stamp sets f's times to expires with galleta's stamp. name is f's name
// in the session directory (for platforms that set times by name).
func (s *Store) stamp(f *os.File, name string, expires time.Time) error {
	at, mt := stampTimes(expires)
	return s.setTimes(f, name, at, mt)
}

// stamped reports whether fi carries galleta's stamp.
func stamped(fi fs.FileInfo) bool {
	mt := fi.ModTime()
	if mt.Nanosecond()%int(time.Millisecond) != stampNanos {
		return false
	}
	at, ok := atime(fi)
	return ok && at.Equal(mt.Add(time.Millisecond))
}
