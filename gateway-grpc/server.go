package main

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"log"
	"math"
	"runtime/debug"
	"sort"
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

// forwarded are answered by Triton as they are (perf_analyzer reads statistics through whatever it
// points at); ModelInfer goes through the cache. Every other method answers UNIMPLEMENTED.
var forwarded = []string{"ModelReady", "ServerMetadata", "ModelMetadata", "ModelConfig", "ModelStatistics"}

// Gateway serves the KServe v2 GRPCInferenceService in front of Triton with the shared cache.
type Gateway struct {
	config    Config
	triton    *TritonPool
	cache     *PredictionCache
	coalescer *Coalescer[answer]
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

	response, hit, err := g.predict(ctx, request, &model)
	if err != nil {
		var mistake clientError
		if errors.As(err, &mistake) {
			err = status.Error(codes.InvalidArgument, mistake.message)
		}
		code = httpStatus(err)
		return nil, status.Convert(err).Err()
	}
	cacheState := "MISS"
	if hit {
		cacheState = "HIT"
	}
	grpc.SetTrailer(ctx, metadata.Pairs("x-cache", cacheState))
	code = "200"
	return response, nil
}

func (g *Gateway) predict(ctx context.Context, request *kserve.ModelInferRequest, model *string) (*kserve.ModelInferResponse, bool, error) {
	info, err := g.triton.ModelInfo(ctx, request.ModelName, request.ModelVersion)
	if err != nil {
		return nil, false, err
	}
	*model = info.Name
	inputs, outputs, err := tensorsFromRequest(request)
	var parameters map[string]*kserve.InferParameter
	if err == nil {
		parameters, err = forwardedParameters(request.Parameters)
	}
	if err == nil {
		err = validate(info, inputs, outputs)
	}
	if err != nil {
		return nil, false, err
	}
	ttl := g.ttl(info)
	key := cacheKey(info.Name, info.Fingerprint, inputs, outputs)
	var get func() []Tensor
	var store func([]Tensor)
	if ttl > 0 {
		get = func() []Tensor {
			if value := g.cache.Get(key); value != nil {
				if result, err := decodeOutputs(value); err == nil {
					return result
				}
				cacheErrors.WithLabelValues("decode").Inc() // a value no gateway wrote: overwrite it
			}
			return nil
		}
		store = func(result []Tensor) {
			if !allFinite(result) { // a model that overflowed is no answer to keep
				cacheBypassed.WithLabelValues(info.Name, "non_finite").Inc()
				return
			}
			size := 0
			for _, t := range result {
				size += len(t.Data)
			}
			if g.cache.Fits(size) { // no copy of outputs too large to store anyway
				<-g.cache.Store(key, encodeOutputs(result), ttl)
			}
		}
	}
	infer := func() ([]Tensor, error) {
		result, err := g.triton.Infer(context.Background(), info, inputs, outputs, parameters)
		if err == nil {
			err = complete(info, outputs, result)
		}
		return result, err
	}
	found, joined, err := lookupOnce(ctx, g.coalescer, key, get, infer, store)
	if joined {
		coalesced.WithLabelValues(info.Name).Inc()
	}
	if ttl > 0 { // a miss counts whatever Triton then did; a follower that left counts as one
		if found.hit {
			cacheHits.WithLabelValues(info.Name).Inc()
		} else {
			cacheMisses.WithLabelValues(info.Name).Inc()
		}
	}
	if err != nil {
		return nil, false, err
	}
	return inferResponse(info, request.Id, found.outputs), found.hit, nil
}

// ttl is the model's cache TTL; 0 for a model without a fingerprint (counted, logged once).
func (g *Gateway) ttl(info *ModelInfo) int {
	ttl := g.config.TTL(info.Name)
	if ttl <= 0 || info.Fingerprint != "" {
		return ttl
	}
	cacheBypassed.WithLabelValues(info.Name, "no_fingerprint").Inc()
	if _, told := g.told.LoadOrStore(info.Name, true); !told {
		missing := info.Unfingerprinted
		if missing == "" {
			missing = info.Name
		}
		log.Printf("gateway-grpc: answers of model '%s' are not cached: the config of '%s' has no "+
			"'fingerprint' parameter. Convert it with `python -m conversion`, or add parameters "+
			"{ key: \"fingerprint\" value { string_value: \"<sha256 of the model file>\" } } to its config.pbtxt.",
			info.Name, missing)
	}
	return 0
}

// forwardedRequestParameters are the gRPC request parameters Triton 2.51 honours that leave a
// unary answer as it is: priority and timeout, and triton_enable_empty_final_response, which
// only shapes decoupled streams (perf_analyzer sends it on every gRPC request).
var forwardedRequestParameters = []string{"priority", "timeout", "triton_enable_empty_final_response"}

// forwardedParameters passes those on as given (Triton checks their types); any other key is a
// client mistake naming it, as on HTTP. None is part of the cache key.
func forwardedParameters(parameters map[string]*kserve.InferParameter) (map[string]*kserve.InferParameter, error) {
	var unknown []string
	for key := range parameters {
		known := false
		for _, forwarded := range forwardedRequestParameters {
			known = known || key == forwarded
		}
		if !known {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, badRequest("request parameters %s are not supported by the gateway; supported: %s",
			listText(unknown), listText(forwardedRequestParameters))
	}
	return parameters, nil
}

// allFinite is false when a floating-point output holds NaN or Infinity.
func allFinite(outputs []Tensor) bool {
	for _, t := range outputs {
		size := itemSize[t.Datatype]
		if t.Datatype != "FP16" && t.Datatype != "FP32" && t.Datatype != "FP64" {
			continue
		}
		for offset := 0; offset+size <= len(t.Data); offset += size {
			if !finiteAt(t.Datatype, t.Data[offset:]) {
				return false
			}
		}
	}
	return true
}

func finiteAt(datatype string, b []byte) bool {
	switch datatype {
	case "FP16":
		return binary.LittleEndian.Uint16(b)&0x7c00 != 0x7c00 // exponent all ones: Inf or NaN
	case "FP32":
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		return !math.IsInf(v, 0) && !math.IsNaN(v)
	case "FP64":
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		return !math.IsInf(v, 0) && !math.IsNaN(v)
	}
	return true
}

// answer is a request's outputs and whether they came from the cache.
type answer struct {
	outputs []Tensor
	hit     bool
}

// lookupOnce answers all identical requests in flight with one lookup: the first looks in the
// cache (get is nil where caching is off) and on a miss infers, then stores while newcomers keep
// joining it. The cache lookup is inside the flight, so no request can miss, wait, and reach
// Triton again after the first answer was stored.
func lookupOnce(ctx context.Context, c *Coalescer[answer], key string, get func() []Tensor,
	infer func() ([]Tensor, error), store func([]Tensor)) (answer, bool, error) {
	lookup := func() (answer, error) {
		if get != nil {
			if cached := get(); cached != nil {
				return answer{outputs: cached, hit: true}, nil
			}
		}
		outputs, err := infer()
		return answer{outputs: outputs}, err
	}
	var hold func(answer) func()
	if store != nil {
		hold = func(found answer) func() {
			if found.hit {
				return nil
			}
			return func() { store(found.outputs) }
		}
	}
	return c.Run(ctx, key, lookup, hold)
}

// complete checks that Triton answered exactly the requested outputs (all, when none are named).
func complete(info *ModelInfo, requested []string, result []Tensor) error {
	expected := uniqueSorted(requested)
	if len(requested) == 0 {
		expected = sortedKeys(info.Outputs)
	}
	got := make([]string, len(result))
	for i, t := range result {
		got[i] = t.Name
	}
	got = uniqueSorted(got)
	if len(got) != len(result) || listText(got) != listText(expected) {
		return status.Errorf(codes.Internal, "incomplete response from Triton: %s != %s", listText(got), listText(expected))
	}
	return nil
}

func inferResponse(info *ModelInfo, id string, outputs []Tensor) *kserve.ModelInferResponse {
	response := &kserve.ModelInferResponse{ModelName: info.Name, ModelVersion: info.Version, Id: id}
	for _, t := range outputs {
		response.Outputs = append(response.Outputs, &kserve.ModelInferResponse_InferOutputTensor{
			Name: t.Name, Datatype: t.Datatype, Shape: t.Shape,
		})
		response.RawOutputContents = append(response.RawOutputContents, t.Data)
	}
	return response
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
