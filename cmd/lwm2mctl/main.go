// Command lwm2mctl is the operator's command line for a running lwm2md: it
// lists devices and reads, writes, executes, observes and deletes through
// the REST API (docs/api.md), and follows the event stream.
//
//	lwm2mctl [--url URL] [--token TOKEN] COMMAND ARGS
//
//	clients [--prefix P] [--status online|sleeping] [--version V]
//	show EP                      the registration, as JSON
//	read EP PATH [--format F]    values as path, type, value rows
//	write EP PATH VALUE|JSON [--partial]
//	exec EP PATH [ARGS]
//	create EP OBJECT JSON
//	delete EP PATH
//	discover EP PATH
//	observe EP PATH              start, then print notifications until interrupted
//	cancel EP PATH               cancel the observations of PATH
//	events [--endpoint EP] [--kind K]
//
// --url defaults to $LWM2MCTL_URL or http://127.0.0.1:8080; --token to
// $LWM2MCTL_TOKEN.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code (0 done, 1
// the server or the device refused, 2 a usage error).
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	c, args, err := parseGlobal(args, env, stderr)
	if err != nil {
		return 2
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "lwm2mctl: unknown command %q\n%s\n", args[0], usage)
		return 2
	}
	c.out, c.errOut = stdout, stderr
	if err := cmd(ctx, c, args[1:]); err != nil {
		if u, ok := err.(usageError); ok {
			fmt.Fprintf(stderr, "lwm2mctl %s: %s\n", args[0], string(u))
			return 2
		}
		fmt.Fprintf(stderr, "lwm2mctl %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

const usage = `usage: lwm2mctl [--url URL] [--token TOKEN] COMMAND ARGS
commands: clients, show, read, write, exec, create, delete, discover, observe, cancel, events`

type usageError string

func (u usageError) Error() string { return string(u) }
