package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/store"
)

const sessionsUsage = `Usage: galleta sessions COMMAND [flags]

Commands:
  list               live sessions: id suffix, user, created, expires, size
  show ID            one session's stored JSON
  delete ID          delete one session (sign it out)
  revoke-user NAME   delete every session of one user
  gc                 delete expired sessions now (Redis expires them itself;
                     servers on files or PostgreSQL also do it in the background)
  count              number of live sessions

Safe while a server uses the same store.

Flags:
`

// sessionsArgs is how many arguments each sessions command takes.
var sessionsArgs = map[string]int{"list": 0, "show": 1, "delete": 1, "revoke-user": 1, "gc": 0, "count": 0}

func sessionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	fs := newFlagSet("sessions "+cmd, sessionsUsage, stdout)
	ef := &envFlags{fs: fs.FlagSet}
	var storeURL string
	var idle time.Duration
	ef.String(&storeURL, "store", defaultStore, "the store: file:DIR, redis://HOST:PORT/DB[?prefix=P] or postgres://USER:PASS@HOST:PORT/DB[?schema=S&table=T] (see galleta --help)")
	ef.Duration(&idle, "idle", galleta.DefaultIdleTimeout, "the server's idle timeout, to show when sessions were last seen")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	switch cmd {
	case "":
		return usagef("sessions needs a command: list, show, delete, revoke-user, gc or count")
	case "-h", "-help", "--help", "help":
		fs.help()
		return nil
	}
	n, known := sessionsArgs[cmd]
	if !known {
		return usagef("unknown sessions command %q (want list, show, delete, revoke-user, gc or count)", cmd)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(ef.errs) > 0 {
		return ef.errs[0]
	}
	if fs.NArg() != n {
		return usagef("sessions %s takes %d argument(s), got %d", cmd, n, fs.NArg())
	}
	spec, err := parseStore(storeURL)
	if err != nil {
		return err
	}
	if spec.kind == "memory" {
		return usagef("a memory store lives inside its server process; `galleta sessions` needs a store it can open, such as file:DIR, redis://HOST:PORT/DB or postgres://USER:PASS@HOST:PORT/DB")
	}
	arg := fs.Arg(0)
	if (cmd == "show" || cmd == "delete") && !store.ValidID(arg) {
		return usagef("%q is not a session id (1-%d characters of A-Z a-z 0-9 _ -)", arg, store.MaxIDLen)
	}
	if cmd == "revoke-user" && strings.TrimSpace(arg) == "" {
		return usagef("revoke-user needs a user name; an empty one would name every anonymous session")
	}
	mode := openReadOnly
	if cmd == "delete" || cmd == "revoke-user" || cmd == "gc" {
		mode = openExisting
	}
	st, closeStore, err := openStore(spec, idle, newLogger("text", stderr), mode)
	if err != nil {
		return err
	}
	defer closeStore()
	switch cmd {
	case "list":
		all, err := listSessions(ctx, st, idle)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, all)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tUSER\tCREATED\tEXPIRES\tSIZE")
		for _, s := range all {
			user := orDash(visible(s.User))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.Suffix(), user, stamp(s.Created), stamp(s.Expires), s.Size)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d live session(s)\n", len(all))
	case "show":
		rec, err := st.Get(ctx, arg)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no live session with that id")
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"info": describe(arg, rec, idle), "data": json.RawMessage(rec.Data)})
		}
		var pretty bytes.Buffer
		text := ""
		if json.Indent(&pretty, rec.Data, "", "  ") == nil {
			text = string(escapeJSON(bytes.TrimSpace(pretty.Bytes())))
		} else {
			text = visible(string(rec.Data))
		}
		info := describe(arg, rec, idle)
		fmt.Fprintf(stdout, "session %s  user %s  expires %s  %d bytes\n%s\n", info.Suffix(), orDash(visible(info.User)), stamp(info.Expires), info.Size, text)
	case "delete":
		if err := st.Delete(ctx, arg); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "deleted")
	case "revoke-user":
		n, err := revokeUser(ctx, st, arg, idle)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]int{"revoked": n})
		}
		fmt.Fprintf(stdout, "revoked %d session(s) of %s\n", n, visible(arg))
	case "gc":
		r, ok := st.(store.Reaper)
		if !ok {
			return fmt.Errorf("this store expires sessions by itself; nothing to collect")
		}
		n, err := r.Reap(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]int{"deleted": n})
		}
		fmt.Fprintf(stdout, "deleted %d expired session(s)\n", n)
		if note := gcNote(spec); note != "" {
			fmt.Fprintf(stdout, "(%s)\n", note)
		}
	case "count":
		c, ok := st.(store.Counter)
		if !ok {
			return fmt.Errorf("this store cannot count its sessions")
		}
		n, err := c.Count(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]int{"live": n})
		}
		fmt.Fprintln(stdout, n)
	}
	return nil
}

// printJSON writes v as indented JSON, with the characters a terminal
// would act on escaped (see escapeJSON).
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
