// Command crowsnest (built from cmd/exporter) watches Argo CD Applications and
// serves Prometheus metrics about their sync state, health and drift. This
// package is the command line only: flags parse into daemon.Options, and
// internal/daemon builds and runs the pipeline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/crowsnest/crowsnest/internal/daemon"
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
	cmd, err := cli.app.Parse(daemonHelp(args))
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
		err = daemon.Record(ctx, cli.recordOptions(), stdout, logger)
	case cli.checkConfig.FullCommand():
		return checkConfig(cli.checkFiles, stdout, stderr)
	default:
		err = daemon.Run(ctx, cli.options(), stdout, logger)
	}
	if err != nil {
		logger.Error("crowsnest stopped", "err", err)
		return 1
	}
	return 0
}

// daemonHelp makes a bare --help (-h) show the daemon's flags, as a
// Prometheus exporter's does: the help of serve, the default command,
// rather than only the global flags. With a command named, args are kept.
func daemonHelp(args []string) []string {
	help := false
	for _, a := range args {
		switch a {
		case "serve", "record", "check-config", "help":
			return args
		case "--help", "-h":
			help = true
		}
	}
	if !help {
		return args
	}
	return append([]string{"serve"}, args...)
}
