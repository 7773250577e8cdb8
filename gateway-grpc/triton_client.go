package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gatewaygrpc/kserve"
	"gatewaygrpc/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	methodPrefix        = "/inference.GRPCInferenceService/"
	maxEnsembleDepth    = 8 // Triton refuses cycles; this bounds a chain of nested ensembles
	unhealthyFor        = 2 * time.Second
	refreshEndpointsPer = 30 * time.Second
	// A fixed HTTP/2 flow-control window turns off gRPC's bandwidth estimation, whose PING per
	// burst of data is one more packet and wake-up on every call.
	windowSize = 1 << 24
)

// endpoint is one Triton address with its connection.
type endpoint struct {
	addr           string
	conn           *grpc.ClientConn
	unhealthyUntil atomic.Int64 // unix nanoseconds
}

func (e *endpoint) healthy() bool { return time.Now().UnixNano() >= e.unhealthyUntil.Load() }

// TritonPool sends calls round-robin to healthy Triton endpoints and fails over when one is
// unreachable; long-lived gRPC connections do not balance behind a Kubernetes Service, so every
// configured name is resolved to its addresses, again every 30 s (gateway/triton_client.py does the same).
type TritonPool struct {
	targets   []string
	timeout   time.Duration
	infoTTL   time.Duration
	mu        sync.RWMutex
	endpoints []*endpoint
	next      atomic.Uint64
	infoMu    sync.Mutex
	info      map[[2]string]*ModelInfo
	fetches   *Coalescer[*ModelInfo] // one info fetch per model at a time, shared by its callers
}

func newTritonPool(c Config) *TritonPool {
	p := &TritonPool{
		targets: c.TritonURLs, timeout: millis(c.TritonTimeout), infoTTL: seconds(c.ModelInfoTTL),
		info: map[[2]string]*ModelInfo{}, fetches: newCoalescer[*ModelInfo](),
	}
	p.adopt(resolve(p.targets))
	return p
}

// resolve expands each host:port to one ip:port per address its name resolves to.
func resolve(targets []string) []string {
	seen := map[string]bool{}
	addrs := []string{}
	for _, target := range targets {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			host, port = target, ""
		}
		ips, err := net.LookupHost(host)
		if err != nil {
			ips = []string{host}
		}
		sort.Strings(ips)
		for _, ip := range ips {
			addr := net.JoinHostPort(ip, port)
			if !seen[addr] {
				seen[addr] = true
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

// adopt serves addrs, keeping the connections of addresses that remain and closing the rest.
func (p *TritonPool) adopt(addrs []string) {
	p.mu.Lock()
	known := map[string]*endpoint{}
	for _, e := range p.endpoints {
		known[e.addr] = e
	}
	endpoints := make([]*endpoint, 0, len(addrs))
	for _, addr := range addrs {
		if e, ok := known[addr]; ok {
			endpoints = append(endpoints, e)
			delete(known, addr)
			continue
		}
		// Fail fast while Triton is down, reconnect within a second once it is back.
		conn, err := grpc.Dial(addr, grpc.WithInsecure(),
			grpc.WithInitialWindowSize(windowSize), grpc.WithInitialConnWindowSize(windowSize),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32),
				grpc.MaxCallSendMsgSize(math.MaxInt32)),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}))
		if err != nil { // only for a malformed address: keep it, so calls report it
			conn = nil
		}
		endpoints = append(endpoints, &endpoint{addr: addr, conn: conn})
	}
	p.endpoints = endpoints
	p.mu.Unlock()
	for _, dropped := range known {
		if dropped.conn != nil {
			dropped.conn.Close()
		}
	}
}

// refreshEndpoints re-resolves the targets until ctx ends (pods come and go behind a headless Service).
func (p *TritonPool) refreshEndpoints(ctx context.Context) {
	ticker := time.NewTicker(refreshEndpointsPer)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if addrs := resolve(p.targets); len(addrs) > 0 {
				p.adopt(addrs)
			}
		}
	}
}

// ordered is every endpoint starting at the next in the rotation, the healthy ones only if any.
func (p *TritonPool) ordered() []*endpoint {
	p.mu.RLock()
	all := p.endpoints
	p.mu.RUnlock()
	start := int(p.next.Add(1) - 1)
	healthy := make([]*endpoint, 0, len(all))
	rotated := make([]*endpoint, 0, len(all))
	for i := range all {
		e := all[(start+i)%len(all)]
		rotated = append(rotated, e)
		if e.healthy() {
			healthy = append(healthy, e)
		}
	}
	if len(healthy) > 0 {
		return healthy
	}
	return rotated
}

// ready is Triton's ServerReady on e: false when it says so, fails or does not answer within
// timeout (Triton 2.51 answers UNAVAILABLE "Server exiting" during its graceful shutdown).
func (e *endpoint) ready(ctx context.Context, timeout time.Duration) bool {
	if e.conn == nil {
		return false
	}
	response := &kserve.ServerReadyResponse{}
	call, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return e.conn.Invoke(call, methodPrefix+"ServerReady", &kserve.ServerReadyRequest{}, response) == nil && response.Ready
}

// Invoke calls method on the next healthy endpoint; an unreachable one is set aside for 2 s and
// the next is tried. Errors come back mapped as the gateway answers them (see fromTriton).
func (p *TritonPool) Invoke(ctx context.Context, method string, in, out interface{}, timeout time.Duration) error {
	var last error
	for _, e := range p.ordered() {
		err := fmt.Errorf("no connection to %s", e.addr)
		if e.conn != nil {
			call, cancel := context.WithTimeout(ctx, timeout)
			err = e.conn.Invoke(call, methodPrefix+method, in, out)
			cancel()
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil { // the caller went away or its deadline passed: not Triton's fault
			return status.FromContextError(ctx.Err()).Err()
		}
		code := status.Code(err)
		tritonErrors.WithLabelValues(codeName(code)).Inc()
		mapped, reason := fromTriton(code, status.Convert(err).Message())
		if status.Code(mapped) == codes.NotFound && !e.ready(ctx, timeout) {
			mapped = tritonNotReady(status.Convert(err).Message()) // shutting down: it unloads every model
		}
		if reason != "" {
			queueRejections.WithLabelValues(reason).Inc()
		}
		if status.Code(mapped) != codes.Unavailable {
			return mapped
		}
		e.unhealthyUntil.Store(time.Now().Add(unhealthyFor).UnixNano())
		last = mapped
	}
	if last == nil {
		last = status.Error(codes.Unavailable, "inference server unavailable: no endpoint")
	}
	return last
}

// TensorInfo is an input or output as the model's metadata declares it (-1: any size).
type TensorInfo struct {
	Datatype string
	Shape    []int64
}

// ModelInfo is what validation and the cache key need to know about a model (its config
// parameters as gateway/model_config.py reads them). Fingerprint is "" where the model, or a step
// of an ensemble, has none: its answers are not cached, and Unfingerprinted names that model.
type ModelInfo struct {
	Name, Version, Fingerprint string
	MaxBatchSize               int64
	Inputs, Outputs            map[string]TensorInfo
	ValidRanges                map[string][2]int64  // inclusive bounds of index inputs
	MaxLengths                 map[string]int64     // longest variable axis of an input, batch aside
	AllowEmpty                 map[string]bool      // inputs that may have a zero-length axis
	SharedAxes                 map[string][]AxisRef // axes that always have one length, by axis name
	Unfingerprinted            string
	RowCache                   bool // answers are cached per row (rowCache)
	fetched                    time.Time
}

// AxisRef is one axis of one input, counted as the request counts them (batch = 0).
type AxisRef struct {
	Input string
	Axis  int64
}

// ModelInfo fetches metadata and config (max batch size, fingerprint), reused for model_info_ttl_s;
// once expired, one fetch answers every call that asks meanwhile (as gateway/triton_client.py),
// so an expiry under load costs Triton one metadata and one config call per model. While Triton
// is unreachable or does not answer in time the last known info stays valid (nothing new can be
// deployed), so cached answers keep being served. A name Triton would serve as another model is
// NOT_FOUND; a version is written as Triton answers it (model_names.go).
func (p *TritonPool) ModelInfo(ctx context.Context, model, version string) (*ModelInfo, error) {
	if err := checkModelName(model); err != nil {
		return nil, err
	}
	version, err := canonicalVersion(version)
	if err != nil {
		return nil, err
	}
	key := [2]string{model, version}
	p.infoMu.Lock()
	cached := p.info[key]
	p.infoMu.Unlock()
	if cached != nil && time.Since(cached.fetched) < p.infoTTL {
		return cached, nil
	}
	// The shared fetch is bounded by the Triton timeout, not by the first caller's deadline:
	// a client that goes away must not fail the others (coalescer.go).
	info, _, err := p.fetches.Run(ctx, model+"\x00"+version, func() (*ModelInfo, error) {
		return p.fetchInfo(context.Background(), model, version, cached)
	}, nil)
	return info, err
}

// fetchInfo fetches and keeps the ModelInfo of a model (see ModelInfo); cached is the expired one.
func (p *TritonPool) fetchInfo(ctx context.Context, model, version string, cached *ModelInfo) (*ModelInfo, error) {
	var err error
	key := [2]string{model, version}
	metadata, config := &kserve.ModelMetadataResponse{}, &kserve.ModelConfigResponse{}
	errs := make(chan error, 2)
	go func() {
		errs <- p.Invoke(ctx, "ModelMetadata", &kserve.ModelMetadataRequest{Name: model, Version: version}, metadata, p.timeout)
	}()
	go func() {
		errs <- p.Invoke(ctx, "ModelConfig", &kserve.ModelConfigRequest{Name: model, Version: version}, config, p.timeout)
	}()
	for i := 0; i < 2; i++ {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err == nil && metadata.Name != model { // a name Triton resolved to another model
		err = unknownModel(model, "")
	}
	var info *ModelInfo
	if err == nil {
		info, err = newModelInfo(model, version, metadata, config.GetConfig())
	}
	batches := false
	if err == nil {
		info.Fingerprint, info.Unfingerprinted, batches, err = p.fingerprint(ctx, model, config.GetConfig(), 0)
	}
	if err == nil {
		info.RowCache, err = rowCache(config.GetConfig(), batches)
	}
	if err != nil {
		if code := status.Code(err); cached != nil && (code == codes.Unavailable || code == codes.DeadlineExceeded) {
			return cached, nil // Triton is down or hung: nothing new can be deployed
		}
		return nil, err
	}
	p.infoMu.Lock()
	p.info[key] = info
	p.infoMu.Unlock()
	return info, nil
}

// fingerprint is the cache fingerprint of a model and "", or "" and the model without one: an
// ensemble's combines its own with each step's, resolved through their configs, in the format of
// gateway/model_config.py's combined_fingerprint (own, then "|<step model>=<its fingerprint>");
// batches says the model (an ensemble: every step) has dynamic_batching.
func (p *TritonPool) fingerprint(ctx context.Context, model string, config *kserve.ModelConfig, depth int) (string, string, bool, error) {
	own := parameter(config, shared.FingerprintParameter)
	var steps []*kserve.ModelEnsembling_Step
	if config.GetPlatform() == "ensemble" {
		steps = config.GetEnsembleScheduling().GetStep()
	}
	if len(steps) == 0 {
		if own == "" {
			return "", model, config.GetDynamicBatching() != nil, nil
		}
		return own, "", config.GetDynamicBatching() != nil, nil
	}
	if own == "" || depth >= maxEnsembleDepth {
		return "", model, false, nil
	}
	combined, batches := own, true
	for _, step := range steps {
		version := ""
		if step.ModelVersion > 0 {
			version = strconv.FormatInt(step.ModelVersion, 10)
		}
		response := &kserve.ModelConfigResponse{}
		request := &kserve.ModelConfigRequest{Name: step.ModelName, Version: version}
		if err := p.Invoke(ctx, "ModelConfig", request, response, p.timeout); err != nil {
			return "", "", false, err
		}
		member, missing, stepBatches, err := p.fingerprint(ctx, step.ModelName, response.GetConfig(), depth+1)
		if err != nil || missing != "" {
			return "", missing, false, err
		}
		combined += "|" + step.ModelName + "=" + member
		batches = batches && stepBatches
	}
	return combined, "", batches, nil
}

// Infer runs one inference with canonical raw inputs and reads the outputs back; parameters are
// the request's priority and timeout, passed on as the client gave them.
func (p *TritonPool) Infer(ctx context.Context, info *ModelInfo, inputs []Tensor, outputs []string,
	parameters map[string]*kserve.InferParameter) ([]Tensor, error) {
	request := &kserve.ModelInferRequest{ModelName: info.Name, ModelVersion: info.Version, Parameters: parameters}
	for _, t := range inputs {
		request.Inputs = append(request.Inputs, &kserve.ModelInferRequest_InferInputTensor{
			Name: t.Name, Datatype: t.Datatype, Shape: t.Shape,
		})
		request.RawInputContents = append(request.RawInputContents, t.Data)
	}
	for _, name := range outputs {
		request.Outputs = append(request.Outputs, &kserve.ModelInferRequest_InferRequestedOutputTensor{Name: name})
	}
	response := &kserve.ModelInferResponse{}
	started := time.Now()
	err := p.Invoke(ctx, "ModelInfer", request, response, p.timeout)
	tritonDuration.WithLabelValues(info.Name).Observe(time.Since(started).Seconds())
	if err != nil {
		return nil, err
	}
	if len(response.Outputs) != len(response.RawOutputContents) {
		return nil, status.Error(codes.Internal, "malformed response from Triton: outputs without raw contents")
	}
	result := make([]Tensor, len(response.Outputs))
	for i, out := range response.Outputs {
		t, err := tensorFromRaw("output", out.Name, out.Datatype, out.Shape, response.RawOutputContents[i])
		if err != nil {
			return nil, status.Errorf(codes.Internal, "malformed response from Triton: %v", err)
		}
		result[i] = t
	}
	return result, nil
}
