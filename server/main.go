// Command flowlab serves the lab: the sample services of every pattern, the
// embedded Kafka broker, the page and its websocket.
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
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flowlab:", err)
		os.Exit(1)
	}
}

// run starts everything, serves until ctx ends, then stops within
// shutdownWait.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	app, err := open(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	return app.Run(ctx)
}
