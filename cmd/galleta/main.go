// Command galleta runs a demo web app on galleta sessions, and lists,
// inspects, revokes, cleans up and migrates sessions.
//
//	galleta serve                      the demo app on 127.0.0.1:8080, file store in ./sessions
//	galleta sessions list|show ID|delete ID|revoke-user NAME|gc|count [--store S] [--json]
//	galleta migrate --from STORE --to STORE
//
// Stores are named by URL: memory, file:DIR (default file:./sessions),
// redis://HOST:PORT/DB (also rediss://, unix://, redis+cluster://; the
// query parameter prefix sets the key prefix) or
// postgres://USER:PASS@HOST:PORT/DB (also postgresql://; the query
// parameters schema and table name the table, default session).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/galleta-go/galleta/store"
)

// exitUsage is the exit code for bad flags, arguments or store URLs.
const exitUsage = 2

// usageError is a mistake in the command line: printed with a hint, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

const topUsage = `galleta: HTTP sessions for Go, compatible with Express

Usage:
  galleta serve [flags]            run the demo web app (see galleta serve --help)
  galleta sessions COMMAND [flags] list, show, delete, revoke-user, gc, count
  galleta migrate --from S --to S  copy every live session from one store to another

Stores: memory, file:DIR (default file:./sessions), redis://HOST:PORT/DB
(rediss://, unix://PATH, redis+cluster://HOST:PORT,HOST:PORT/; add
?prefix=P for a key prefix other than sess:), or
postgres://USER:PASS@HOST:PORT/DB?sslmode=... (postgresql:// too; add
&schema=S&table=T for a table other than session on the search_path)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code. A usage
// error is one line on stderr that says where the help is; help goes to
// stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCmd(ctx, args[1:], stdout, stderr)
	case "sessions":
		err = sessionsCmd(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "galleta: unknown command %q; see galleta --help\n", args[0])
		return exitUsage
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "galleta: %v; see galleta %s --help\n", err, args[0])
		return exitUsage
	default:
		fmt.Fprintf(stderr, "galleta: %v\n", err)
		return 1
	}
}

// flagSet is a command's flags and its help text. The flag package prints
// nothing: parse returns errors for run to print in one line, and -h or
// --help prints the help (the text, then every flag) on stdout.
type flagSet struct {
	*flag.FlagSet
	usage  string
	stdout io.Writer
}

func newFlagSet(name, usage string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, usage: usage, stdout: stdout}
}

// help prints the usage text and every flag on stdout.
func (fs *flagSet) help() {
	fmt.Fprint(fs.stdout, fs.usage)
	fs.SetOutput(fs.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses flags, also after positional arguments (`sessions show ID
// --store X`), and turns a parse failure into a usage error; -h and --help
// print the help and return flag.ErrHelp. The positional arguments are
// then fs.Args(); everything after "--" is positional.
//
// An argument that starts with '-' but names no flag, and is long enough to
// be a session id (minIDArg bytes of store.ValidID's alphabet), is a
// positional argument: a random session id starts with '-' once in 64.
func parse(fs *flagSet, args []string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil && len(a) >= minIDArg && store.ValidID(a) {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(args) {
			flags = append(flags, args[i+1]) // the flag's value, whatever it looks like
			i++
		}
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.help()
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 { // not expected: each flag's value was taken above
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// minIDArg is the shortest argument starting with '-' that parse takes for
// a session id rather than a flag: galleta's ids are 43 bytes,
// express-session's 32.
const minIDArg = 20

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
