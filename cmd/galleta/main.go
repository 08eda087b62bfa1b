// Command galleta runs a demo web app on galleta sessions, and lists,
// inspects, revokes, cleans up and migrates sessions.
//
//	galleta serve                      the demo app on 127.0.0.1:8080, file store in ./sessions
//	galleta sessions list|show ID|delete ID|revoke-user NAME|gc|count [--store S] [--json]
//	galleta migrate --from STORE --to STORE
//
// Stores are named by URL: memory, file:DIR (default file:./sessions),
// redis://… and postgres://… (arriving with their own stores).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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

Stores: memory, file:DIR (default file:./sessions), redis://..., postgres://...
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
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
		fmt.Fprintf(stderr, "galleta: unknown command %q\n\n%s", args[0], topUsage)
		return exitUsage
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "galleta: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "galleta: %v\n", err)
		return 1
	}
}

// newFlagSet makes a flag set that reports errors as usage errors instead
// of exiting.
func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, also after positional arguments (`sessions show ID
// --store X`), and turns a parse failure into a usage error (the flag
// package already printed the usage). The positional arguments are then
// fs.Args().
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}
