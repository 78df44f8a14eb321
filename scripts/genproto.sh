#!/usr/bin/env bash
# Regenerates every generated file under proto/gen from the .proto sources:
# Go messages, gRPC stubs, and the example service's descriptor set.
# Reproducible: protoc comes from Debian (protobuf-compiler 3.21.12) and the
# plugins are built from pinned module versions into a private directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.0
GRPC_GATEWAY_VERSION=v2.33.0

if ! command -v protoc >/dev/null 2>&1; then
  echo "genproto: installing protoc (Debian protobuf-compiler)"
  apt-get install -y -qq protobuf-compiler >/dev/null
fi
bin="$PWD/.cache/protoc-bin"
mkdir -p "$bin"
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
GOBIN="$bin" go install "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$GRPC_GATEWAY_VERSION"
GOBIN="$bin" go install "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$GRPC_GATEWAY_VERSION"
export PATH="$bin:$PATH"

rm -rf proto/gen
mkdir -p proto/gen
protos=$(cd proto && find cometgate example -name '*.proto' | sort)
(cd proto && protoc -I . \
  --go_out=gen --go_opt=paths=source_relative \
  --go-grpc_out=gen --go-grpc_opt=paths=source_relative \
  $protos)
# The control API's REST gateway and OpenAPI document, from the HTTP mapping
# in gateway_http.yaml and the OpenAPI options (title, version, security) in
# gateway_openapi.yaml. The OpenAPI document is also copied next to the Go
# code that serves it.
(cd proto && protoc -I . \
  --grpc-gateway_out=gen --grpc-gateway_opt=paths=source_relative \
  --grpc-gateway_opt=grpc_api_configuration=cometgate/gateway/v1/gateway_http.yaml \
  --openapiv2_out=gen --openapiv2_opt=grpc_api_configuration=cometgate/gateway/v1/gateway_http.yaml \
  --openapiv2_opt=openapi_configuration=cometgate/gateway/v1/gateway_openapi.yaml \
  cometgate/gateway/v1/gateway.proto)
cp proto/gen/cometgate/gateway/v1/gateway.swagger.json gateway/api/openapi.json
# The gRPC stub template links to a package index for ClientConn.NewStream;
# the project names no package registry hosts, so point at the API by name.
find proto/gen -name '*_grpc.pb.go' -exec sed -i \
  's|please refer to https://[^ ]*#ClientConn.NewStream\.|please refer to the documentation of grpc.ClientConn.NewStream.|' {} +
# A descriptor set of the example service, for the descriptor-set binding mode.
(cd proto && protoc -I . --include_imports --descriptor_set_out=gen/example/v1/example.pb example/v1/example.proto)
echo "genproto: regenerated proto/gen"
