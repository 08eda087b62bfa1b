package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/galleta-go/galleta/store"
)

const migrateUsage = `Usage: galleta migrate --from STORE --to STORE

Copies every live session, with its expiry, from one store to another, so
nobody is signed out when a site moves (to another disk or machine, or
between the file store, Redis and PostgreSQL, in any direction). Stores:
file:DIR, redis://HOST:PORT/DB[?prefix=P] or
postgres://USER:PASS@HOST:PORT/DB[?schema=S&table=T] (see galleta --help);
the --from store is only read. A --to directory is created; a --to
PostgreSQL table must exist (galleta serve on it creates it). Running it
twice is harmless: a session already copied is written again with the
same content. Servers on the --to store keep users signed in if they use
the same secret file.

Flags:
`

func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", migrateUsage, stdout)
	from := fs.String("from", "", "the store to copy from")
	to := fs.String("to", "", "the store to copy to")
	idle := fs.Duration("idle", time.Hour, "the idle timeout (the file store's TTL for Node's expiry rule)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		return usagef("migrate needs --from and --to, and no arguments")
	}
	src, err := parseStore(*from)
	if err != nil {
		return err
	}
	dst, err := parseStore(*to)
	if err != nil {
		return err
	}
	if src.kind == "memory" || dst.kind == "memory" {
		return usagef("a memory store lives inside its server process and cannot be migrated from or to")
	}
	if src.same(dst) {
		return usagef("--from and --to are the same store (%s)", src)
	}
	log := newLogger("text", stderr)
	in, closeIn, err := openStore(src, *idle, log, openReadOnly)
	if err != nil {
		return fmt.Errorf("open --from store: %w", err)
	}
	defer closeIn()
	out, closeOut, err := openStore(dst, *idle, log, openCreate)
	if err != nil {
		return fmt.Errorf("open --to store: %w", err)
	}
	defer closeOut()
	lister, ok := in.(store.Lister)
	if !ok {
		return fmt.Errorf("the --from store cannot list its sessions")
	}
	total := -1
	if c, ok := in.(store.Counter); ok {
		if n, err := c.Count(ctx); err == nil {
			total = n
		}
	}
	p := newProgress(stdout, total)
	var copied, failed int
	var firstErr error
	err = lister.List(ctx, func(id string, rec store.Record) bool {
		if ctx.Err() != nil {
			return false
		}
		if err := out.Set(ctx, id, rec); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			return true
		}
		copied++
		p.update(copied)
		return true
	})
	p.done(copied)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("migrate stopped after %d session(s): %w", copied, err)
	}
	dstCount := "?"
	if c, ok := out.(store.Counter); ok {
		if n, err := c.Count(ctx); err == nil {
			dstCount = fmt.Sprint(n)
		}
	}
	fmt.Fprintf(stdout, "copied %d live session(s) from %s to %s; %d failed; %s now holds %s live session(s)\n", copied, src, dst, failed, dst, dstCount)
	if failed > 0 {
		return fmt.Errorf("%d session(s) could not be copied; first error: %w", failed, firstErr)
	}
	return nil
}

// progress shows a bar with rate and ETA on a terminal, and a plain line
// every few seconds otherwise.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(n int) {
	now := time.Now()
	every := 2 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.print(n, false)
}

func (p *progress) done(n int) { p.print(n, true) }

func (p *progress) print(n int, final bool) {
	el := time.Since(p.start)
	rate := float64(n) / max(el.Seconds(), 1e-9)
	eta := "?"
	if p.total > 0 && rate > 0 {
		eta = (time.Duration(float64(max(p.total-n, 0))/rate) * time.Second).Round(time.Second).String()
	}
	of := "?"
	if p.total >= 0 {
		of = fmt.Sprint(p.total)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "migrate: %d/%s sessions, %.0f/s, eta %s\n", n, of, rate, eta)
		return
	}
	const width = 30
	bar := strings.Repeat(" ", width)
	if p.total > 0 {
		fill := min(width, n*width/p.total)
		bar = strings.Repeat("#", fill) + strings.Repeat(".", width-fill)
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r[%s] %d/%s  %.0f/s  eta %s   %s", bar, n, of, rate, eta, end)
}
