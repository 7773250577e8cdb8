// The calls gateway-grpc answers without the cache, as gateway/kserve_routes.py answers the HTTP
// ones: liveness (itself), readiness (any Triton endpoint), and model readiness, server and model
// metadata, config and statistics forwarded to Triton as undecoded frames.
package main

import (
	"context"
	"fmt"
	"time"

	"gatewaygrpc/kserve"
	"gatewaygrpc/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// forwarded are answered by Triton (perf_analyzer reads statistics through whatever it points at):
// model requests once their name and version are checked, server metadata with the extensions the
// gateway serves; ModelInfer goes through the cache. Every other method answers UNIMPLEMENTED.
var forwarded = []string{"ModelReady", "ServerMetadata", "ModelMetadata", "ModelConfig", "ModelStatistics"}

// ServerLive is answered by the gateway itself; ServerReady is true when any Triton endpoint is.
func (g *Gateway) ServerLive(context.Context, *kserve.ServerLiveRequest) (*kserve.ServerLiveResponse, error) {
	return &kserve.ServerLiveResponse{Live: true}, nil
}

func (g *Gateway) ServerReady(ctx context.Context) bool {
	for _, e := range g.triton.ordered() {
		if e.ready(ctx, time.Second) {
			return true
		}
	}
	return false
}

func (g *Gateway) forward(ctx context.Context, method string, in *frame) (*frame, error) {
	if err := g.authorize(ctx); err != nil {
		return nil, err
	}
	if method != "ServerMetadata" {
		if err := in.checkModel(); err != nil {
			return nil, err
		}
	}
	out := &frame{}
	if err := g.triton.Invoke(ctx, method, in, out, 5*time.Second); err != nil {
		return nil, err
	}
	if method == "ServerMetadata" {
		return servedExtensions(out)
	}
	if method == "ModelConfig" {
		return g.withResponseCache(out)
	}
	return out, nil
}

// withResponseCache marks a model whose answers the gateway caches (a fingerprint and a TTL) as
// having a response cache (model_config.proto's response_cache.enable), as Triton marks its own:
// a cache hit never reaches Triton's statistics, and perf_analyzer without -x finds the version it
// measures from those statistics unless the config says a cache answers (inference_profiler.cc,
// DetermineStatsModelVersion: "failed to find the requested model version").
func (g *Gateway) withResponseCache(out *frame) (*frame, error) {
	response := &kserve.ModelConfigResponse{}
	if err := proto.Unmarshal(out.data, response); err != nil {
		return nil, status.Error(codes.Internal, "Triton's model config is not a ModelConfigResponse")
	}
	config := response.Config
	if config == nil || config.Parameters["fingerprint"] == nil || g.config.TTL(config.Name) <= 0 {
		return out, nil
	}
	response.Config.ResponseCache = &kserve.ModelResponseCache{Enable: true}
	data, err := proto.Marshal(response)
	return &frame{data}, err
}

// checkModel refuses a model request (ModelReady, ModelMetadata, ModelConfig, ModelStatistics:
// each has name = 1 and version = 2, so any reads as a ModelMetadataRequest) for a name Triton
// would serve as another model, and writes its version as Triton answers it (model_names.go).
func (in *frame) checkModel() error {
	request := &kserve.ModelMetadataRequest{}
	if err := proto.Unmarshal(in.data, request); err != nil {
		return status.Error(codes.InvalidArgument, "request is not a model request")
	}
	if err := checkModelName(request.Name); err != nil {
		return err
	}
	version, err := canonicalVersion(request.Version)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if version != request.Version {
		request.Version = version
		data, err := proto.Marshal(request)
		if err != nil {
			return err
		}
		in.data = data
	}
	return nil
}

// servedExtensions is Triton's ServerMetadataResponse listing only the extensions the gateway
// serves too (shared.ServedExtensions, from gateway/kserve_routes.py).
func servedExtensions(out *frame) (*frame, error) {
	metadata := &kserve.ServerMetadataResponse{}
	if err := proto.Unmarshal(out.data, metadata); err != nil {
		return nil, status.Error(codes.Internal, "Triton's server metadata is not a ServerMetadataResponse")
	}
	var served []string
	for _, name := range metadata.Extensions {
		for _, ours := range shared.ServedExtensions {
			if name == ours {
				served = append(served, name)
			}
		}
	}
	metadata.Extensions = served
	data, err := proto.Marshal(metadata)
	return &frame{data}, err
}

// frame is a message passed through undecoded: the calls the gateway forwards to Triton as they are.
type frame struct{ data []byte }

// codec replaces gRPC's "proto" codec: protobuf messages as usual (google.golang.org/protobuf),
// frames as their bytes.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *frame:
		return m.data, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("cannot marshal %T", v)
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case *frame:
		m.data = append([]byte(nil), data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("cannot unmarshal into %T", v)
}

func init() { encoding.RegisterCodec(codec{}) }
