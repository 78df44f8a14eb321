// Command gateway runs a Cometgate node: a Bayeux (CometD) server for
// browsers and other Bayeux clients.
//
//	gateway                      # embedded defaults: 127.0.0.1:8080, demo chat at /
//	gateway -config FILE         # YAML configuration (see config/)
//	gateway -check-config FILE   # validate and exit
//
// SIGINT and SIGTERM shut the gateway down gracefully (exit code 0 when
// all went well). SIGHUP is logged and ignored: configuration reload is
// not supported yet.
package main

import (
	"context"
	"flag"
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
	configPath := flag.String("config", "", "YAML configuration file (default: embedded defaults)")
	checkPath := flag.String("check-config", "", "validate this configuration file and exit")
	flag.Parse()

	if *checkPath != "" {
		cfg, err := config.Load(*checkPath)
		if err == nil {
			err = gateway.Check(cfg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("configuration OK")
		return 0
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := newLogger(cfg.Log)
	srv, err := gateway.New(cfg, gateway.WithLogger(log))
	if err != nil {
		log.Error("cannot build gateway", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ignoreHangups(ctx, log)
	if err := srv.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}

// ignoreHangups keeps SIGHUP, which would otherwise end the process, from
// stopping the gateway: configuration reload does not exist yet, so each
// one is logged until ctx is done, and ignored after. It returns once the
// signal is caught.
func ignoreHangups(ctx context.Context, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP ignored: configuration reload is not supported yet")
			case <-ctx.Done():
				return
			}
		}
	}()
}

func newLogger(c config.LogConfig) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: gateway.ReplaceLogAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
