// Command gateway runs a Cometgate node: a Bayeux (CometD) server for
// browsers and other Bayeux clients.
//
//	gateway                      # embedded defaults: 127.0.0.1:8080, demo chat at /
//	gateway -config FILE         # YAML configuration (see config/)
//	gateway genconfig            # print the annotated reference configuration
//	gateway checkconfig FILE     # validate and exit (also -check-config FILE)
//	gateway -version             # module version and VCS revision
//	gateway -h                   # flags, commands and environment variables
//
// SIGINT and SIGTERM shut the gateway down gracefully (exit code 0 when
// all went well). SIGHUP reloads the -config file (see gateway.Server.Reload).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
)

func main() {
	os.Exit(run())
}

func run() int {
	configPath, code, done := command(os.Args[1:], os.Stdout, os.Stderr)
	if done {
		return code
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(gateway.NewLogHandler(os.Stderr, cfg.Log))
	srv, err := gateway.New(cfg, gateway.WithLogger(log), gateway.WithConfigFile(configPath))
	if err != nil {
		log.Error("cannot build gateway", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reloadOnHangup(ctx, srv)
	if err := srv.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}

// reloadOnHangup reloads the configuration on each SIGHUP until ctx is
// done (Server.Reload logs the outcome; a refused file leaves the gateway
// running as it was). SIGHUP is caught from now on, so that it never ends
// the process.
func reloadOnHangup(ctx context.Context, srv *gateway.Server) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-hup:
				srv.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
}
