// The calls gateway-grpc answers without the cache, as gateway/kserve_routes.py answers the HTTP
// ones: liveness (itself), readiness (any Triton endpoint), and model readiness, server and model
// metadata, config and statistics forwarded to Triton as undecoded frames.
package main

import (
	"context"
	"fmt"
	"time"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

// forwarded are answered by Triton as they are (perf_analyzer reads statistics through whatever it
// points at); ModelInfer goes through the cache. Every other method answers UNIMPLEMENTED.
var forwarded = []string{"ModelReady", "ServerMetadata", "ModelMetadata", "ModelConfig", "ModelStatistics"}

// ServerLive is answered by the gateway itself; ServerReady is true when any Triton endpoint is.
func (g *Gateway) ServerLive(context.Context, *kserve.ServerLiveRequest) (*kserve.ServerLiveResponse, error) {
	return &kserve.ServerLiveResponse{Live: true}, nil
}

func (g *Gateway) ServerReady(ctx context.Context) bool {
	for _, e := range g.triton.ordered() {
		if e.conn == nil {
			continue
		}
		response := &kserve.ServerReadyResponse{}
		call, cancel := context.WithTimeout(ctx, time.Second)
		err := e.conn.Invoke(call, methodPrefix+"ServerReady", &kserve.ServerReadyRequest{}, response)
		cancel()
		if err == nil && response.Ready {
			return true
		}
	}
	return false
}

func (g *Gateway) forward(ctx context.Context, method string, in *frame) (*frame, error) {
	if err := g.authorize(ctx); err != nil {
		return nil, err
	}
	out := &frame{}
	if err := g.triton.Invoke(ctx, method, in, out, 5*time.Second); err != nil {
		return nil, err
	}
	return out, nil
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
