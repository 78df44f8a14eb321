package backend_test

import (
	"context"

	"google.golang.org/grpc/metadata"
)

func metadataFromIncoming(ctx context.Context) (metadata.MD, bool) {
	return metadata.FromIncomingContext(ctx)
}
