// Command crowsnest (built from cmd/exporter) watches Argo CD Applications and
// serves Prometheus metrics about their sync state, health and drift.
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it runs until ctx is done and returns
// the exit code, so tests can drive the whole command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := newCLI(stdout, stderr)
	cmd, err := cli.app.Parse(args)
	if cli.exited {
		return cli.exitCode
	}
	if err != nil {
		fmt.Fprintf(stderr, "crowsnest: %v\n", err)
		return 2
	}
	logger := cli.logger()
	switch cmd {
	case cli.record.FullCommand():
		err = cli.runRecord(ctx, logger)
	default:
		err = cli.runServe(ctx, logger)
	}
	if err != nil {
		logger.Error("crowsnest stopped", "err", err)
		return 1
	}
	return 0
}
