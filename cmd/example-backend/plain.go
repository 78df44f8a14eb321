package main

import (
	"context"
	"time"

	examplev1 "github.com/cometgate/cometgate/proto/gen/example/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of Ticker.Watch.
var (
	defaultSymbols  = []string{"ACME", "GLOBEX"}
	defaultInterval = 200 * time.Millisecond
	minInterval     = 10 * time.Millisecond
)

// calculator is example.v1.Calculator.
type calculator struct {
	examplev1.UnimplementedCalculatorServer
}

func (calculator) Add(_ context.Context, req *examplev1.AddRequest) (*examplev1.AddResponse, error) {
	a, b := req.GetA(), req.GetB()
	sum := a + b
	if (a > 0 && b > 0 && sum < 0) || (a < 0 && b < 0 && sum >= 0) {
		return nil, status.Error(codes.OutOfRange, "sum overflows int64")
	}
	return &examplev1.AddResponse{Sum: sum}, nil
}

// ticker is example.v1.Ticker.
type ticker struct {
	examplev1.UnimplementedTickerServer
	done <-chan struct{} // closed at shutdown: ends open streams
}

// Watch sends one quote per symbol every interval until the client
// cancels; sequence counts the rounds from 1.
func (t *ticker) Watch(req *examplev1.WatchRequest, stream grpc.ServerStreamingServer[examplev1.Quote]) error {
	symbols := req.GetSymbols()
	if len(symbols) == 0 {
		symbols = defaultSymbols
	}
	for _, s := range symbols {
		if !stockName.MatchString(s) {
			return status.Errorf(codes.InvalidArgument, "bad symbol %q", s)
		}
	}
	interval := defaultInterval
	switch ms := req.GetIntervalMs(); {
	case ms < 0:
		return status.Error(codes.InvalidArgument, "interval_ms must be >= 0")
	case ms > 0:
		interval = max(time.Duration(ms)*time.Millisecond, minInterval)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		for _, s := range symbols {
			q := &examplev1.Quote{Symbol: s, Price: price(s, uint64(seq)), Sequence: seq}
			if err := stream.Send(q); err != nil {
				return err
			}
		}
		select {
		case <-tick.C:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-t.done:
			return status.Error(codes.Unavailable, "backend shutting down")
		}
	}
}
