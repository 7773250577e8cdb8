// The gateway's KServe v2 gRPC front end, as gateway/app.py is its HTTP one: the service
// registered by hand, API keys, admission (load shedding), and each call's metrics.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"log"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const route = "grpc:ModelInfer"

// Gateway serves the KServe v2 GRPCInferenceService in front of Triton with the shared cache.
type Gateway struct {
	config    Config
	triton    *TritonPool
	cache     *PredictionCache
	coalescer *Coalescer[answer]
	rows      *RowFlights[rowAnswer]
	inFlight  atomic.Int64
	told      sync.Map // models whose missing fingerprint was logged
}

func (g *Gateway) authorize(ctx context.Context) error {
	if len(g.config.APIKeys) == 0 {
		return nil
	}
	given := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("x-api-key")) > 0 {
		given = md.Get("x-api-key")[0]
	}
	accepted := 0
	for _, key := range g.config.APIKeys { // every key compared, each in constant time
		accepted |= subtle.ConstantTimeCompare([]byte(given), []byte(key))
	}
	if accepted == 0 {
		return status.Error(codes.Unauthenticated, "missing or invalid x-api-key")
	}
	return nil
}

// ModelInfer: authorize -> decode (nothing is spent on the body before) -> admit -> model info ->
// validate -> key -> coalesce identical requests -> Redis -> on a miss, Triton -> answer, then store.
func (g *Gateway) ModelInfer(ctx context.Context, decode func(interface{}) error) (*kserve.ModelInferResponse, error) {
	started := time.Now()
	model, code := "", "500"
	defer func() {
		requestDuration.WithLabelValues(route).Observe(time.Since(started).Seconds())
		requests.WithLabelValues(model, route, code).Inc()
	}()
	if err := g.authorize(ctx); err != nil {
		code = "401"
		return nil, err
	}
	request := &kserve.ModelInferRequest{}
	if err := decode(request); err != nil {
		code = "400"
		return nil, status.Error(codes.InvalidArgument, "request is not a ModelInferRequest")
	}
	if g.inFlight.Add(1) > int64(g.config.MaxInFlight) {
		g.inFlight.Add(-1)
		shed.Inc()
		code = "429"
		return nil, status.Error(codes.ResourceExhausted, "too many requests in flight, retry shortly")
	}
	inFlight.Inc()
	defer func() { g.inFlight.Add(-1); inFlight.Dec() }()

	response, report, err := g.predict(ctx, request, &model)
	if err != nil {
		var mistake clientError
		if errors.As(err, &mistake) {
			err = status.Error(codes.InvalidArgument, mistake.message)
		}
		code = httpStatus(err)
		if ctx.Err() != nil { // the client cancelled or its own deadline passed: not a server fault
			code = "499"
		}
		return nil, status.Convert(err).Err()
	}
	trailer := metadata.Pairs("x-cache", report.state)
	if report.perRow {
		trailer.Set("x-cache-hit-rows", strconv.Itoa(report.hitRows))
	}
	grpc.SetTrailer(ctx, trailer)
	code = "200"
	return response, nil
}

// httpStatus is the HTTP status a gRPC status answers with on the HTTP gateway, for the requests metric.
func httpStatus(err error) string {
	switch status.Code(err) {
	case codes.InvalidArgument:
		return "400"
	case codes.Unauthenticated:
		return "401"
	case codes.NotFound:
		return "404"
	case codes.ResourceExhausted:
		return "429"
	case codes.Canceled:
		return "499"
	case codes.Unavailable:
		return "503"
	case codes.DeadlineExceeded:
		return "504"
	}
	return "502"
}

// method is a unary method whose panics become INTERNAL for that request alone: grpc-go does not
// recover them, and one would end the process and every request in flight. (The server has no
// interceptors, so the handler does not call one.)
func method(name string, handle func(ctx context.Context, decode func(interface{}) error) (interface{}, error)) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(_ interface{}, ctx context.Context,
		decode func(interface{}) error, _ grpc.UnaryServerInterceptor) (response interface{}, err error) {
		defer func() {
			if recovered := recover(); recovered != nil {
				log.Printf("gateway-grpc: panic in %s: %v\n%s", name, recovered, debug.Stack())
				response, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handle(ctx, decode)
	}}
}

// serviceDesc registers the methods by hand: ModelInfer decodes its request, the forwarded methods
// pass bytes through (frames), so the gateway needs no generated service code.
func (g *Gateway) serviceDesc() *grpc.ServiceDesc {
	methods := []grpc.MethodDesc{
		method("ModelInfer", func(ctx context.Context, decode func(interface{}) error) (interface{}, error) {
			return g.ModelInfer(ctx, decode)
		}),
		method("ServerLive", func(ctx context.Context, _ func(interface{}) error) (interface{}, error) {
			return g.ServerLive(ctx, &kserve.ServerLiveRequest{})
		}),
		method("ServerReady", func(ctx context.Context, _ func(interface{}) error) (interface{}, error) {
			return &kserve.ServerReadyResponse{Ready: g.ServerReady(ctx)}, nil
		}),
	}
	for _, name := range forwarded {
		name := name
		methods = append(methods, method(name, func(ctx context.Context, decode func(interface{}) error) (interface{}, error) {
			in := &frame{}
			if err := decode(in); err != nil {
				return nil, err
			}
			return g.forward(ctx, name, in)
		}))
	}
	sort.Slice(methods, func(i, j int) bool { return methods[i].MethodName < methods[j].MethodName })
	return &grpc.ServiceDesc{
		ServiceName: "inference.GRPCInferenceService",
		HandlerType: (*interface{})(nil),
		Methods:     methods,
		Metadata:    "grpc_service.proto",
	}
}
