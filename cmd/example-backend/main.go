// Command example-backend is a sample gRPC backend for Cometgate, in one of
// two modes:
//
//   - contract (the default) implements the Cometgate backend contract,
//     cometgate.backend.v1.Backend: a chat-room service (remote calls on
//     /service/rooms/list, /service/rooms/join and /service/rooms/members),
//     a stock ticker feeding /stocks/<SYMBOL>, join events feeding
//     /rooms/<room>/events, a moderating publish hook for /rooms/<room>, and
//     a handshake hook accepting the token "demo". Wire it with
//     config/backend-contract.yaml.
//   - plain serves the ordinary services of proto/example/v1 (Calculator.Add
//     and the server-streaming Ticker.Watch), which know nothing of Bayeux;
//     the gateway binds them through server reflection. Wire it with
//     config/backend-reflection.yaml.
//
// Both modes register gRPC server reflection. SIGINT or SIGTERM ends the
// open streams and stops the server gracefully (forcibly after 5s).
//
// Usage:
//
//	example-backend [-listen 127.0.0.1:9090] [-mode contract|plain]
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	examplev1 "github.com/cometgate/cometgate/proto/gen/example/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

// stopGrace bounds the graceful stop before connections are closed.
const stopGrace = 5 * time.Second

func main() {
	os.Exit(run())
}

func run() int {
	listen := flag.String("listen", "127.0.0.1:9090", "host:port to serve gRPC on")
	mode := flag.String("mode", "contract", "contract: the Cometgate backend contract (chat rooms, ticker); plain: example.v1 Calculator and Ticker")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv := grpc.NewServer()
	switch *mode {
	case "contract":
		backendv1.RegisterBackendServer(srv, newChat(ctx.Done(), log))
	case "plain":
		examplev1.RegisterCalculatorServer(srv, calculator{})
		examplev1.RegisterTickerServer(srv, &ticker{done: ctx.Done()})
	default:
		fmt.Fprintf(os.Stderr, "example-backend: unknown -mode %q (want contract or plain)\n", *mode)
		return 2
	}
	reflection.Register(srv)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("cannot listen", "addr", *listen, "err", err)
		return 1
	}
	log.Info("example backend listening", "addr", ln.Addr().String(), "mode", *mode)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	log.Info("shutting down")
	// Open streams end by themselves (they watch ctx), so that GracefulStop
	// only waits for calls in flight.
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		log.Warn("graceful stop timed out; closing connections")
		srv.Stop()
	}
	<-served
	return 0
}

// price is a deterministic quote for symbol at step seq, so that a resumed
// stream continues the same series.
func price(symbol string, seq uint64) float64 {
	h := fnv.New32a()
	h.Write([]byte(symbol))
	base := 20 + float64(h.Sum32()%480)
	p := base * (1 + 0.05*math.Sin(float64(seq)/7))
	return math.Round(p*100) / 100
}
