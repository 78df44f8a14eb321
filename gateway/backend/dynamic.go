package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// method is a gRPC method bound without generated code.
type method struct {
	fullName string // "/pkg.Service/Method"
	desc     protoreflect.MethodDescriptor
}

var (
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: false}
	marshalJSON   = protojson.MarshalOptions{EmitUnpopulated: true}
)

// request builds the method's request message from JSON data ({} when
// empty).
func (m *method) request(data []byte) (*dynamicpb.Message, error) {
	req := dynamicpb.NewMessage(m.desc.Input())
	if len(data) == 0 || string(data) == "null" {
		return req, nil
	}
	if err := unmarshalJSON.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("data does not fit %s: %w", m.desc.Input().FullName(), err)
	}
	return req, nil
}

func (m *method) response() *dynamicpb.Message { return dynamicpb.NewMessage(m.desc.Output()) }

// resolveMethods finds the descriptors of the named methods
// ("pkg.Service/Method") in the backend's descriptor set, or through its
// server reflection, and checks they exist.
func resolveMethods(ctx context.Context, b *backendConn, names []string) (map[string]*method, error) {
	var files *protoregistry.Files
	var err error
	if b.spec.Descriptors != "" {
		files, err = loadDescriptorSet(b.spec.Descriptors)
	} else {
		var services []string
		for _, n := range names {
			services = append(services, strings.SplitN(strings.TrimPrefix(n, "/"), "/", 2)[0])
		}
		files, err = reflectFiles(ctx, b.grpc, services)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", b.name, err)
	}
	out := make(map[string]*method)
	for _, n := range names {
		svc, name, _ := strings.Cut(strings.TrimPrefix(n, "/"), "/")
		d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
		if err != nil {
			return nil, fmt.Errorf("backend %q: service %s not found", b.name, svc)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("backend %q: %s is not a service", b.name, svc)
		}
		md := sd.Methods().ByName(protoreflect.Name(name))
		if md == nil {
			return nil, fmt.Errorf("backend %q: method %s not found in service %s", b.name, name, svc)
		}
		out[n] = &method{fullName: "/" + svc + "/" + name, desc: md}
	}
	return out, nil
}

func loadDescriptorSet(path string) (*protoregistry.Files, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("parse descriptor set %s: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("descriptor set %s: %w", path, err)
	}
	return files, nil
}

// reflectFiles asks the server's reflection service for the files defining
// services and, transitively, their dependencies.
func reflectFiles(ctx context.Context, conn *grpc.ClientConn, services []string) (*protoregistry.Files, error) {
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("server reflection: %w", err)
	}
	defer stream.CloseSend()
	got := map[string]*descriptorpb.FileDescriptorProto{}
	ask := func(req *reflectionpb.ServerReflectionRequest) error {
		if err := stream.Send(req); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if e := resp.GetErrorResponse(); e != nil {
			return fmt.Errorf("%s", e.GetErrorMessage())
		}
		for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(raw, fd); err != nil {
				return err
			}
			got[fd.GetName()] = fd
		}
		return nil
	}
	for _, svc := range services {
		err := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc}})
		if err != nil {
			return nil, fmt.Errorf("server reflection for %s: %w", svc, err)
		}
	}
	for {
		var missing string
		for _, fd := range got {
			for _, dep := range fd.GetDependency() {
				if got[dep] == nil {
					missing = dep
				}
			}
		}
		if missing == "" {
			break
		}
		err := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: missing}})
		if err != nil {
			return nil, fmt.Errorf("server reflection for file %s: %w", missing, err)
		}
		if got[missing] == nil {
			return nil, fmt.Errorf("server reflection did not return %s", missing)
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range got {
		set.File = append(set.File, fd)
	}
	return protodesc.NewFiles(set)
}

var errStreamEnded = errors.New("backend: stream ended")

// isEOF reports a cleanly ended stream.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
