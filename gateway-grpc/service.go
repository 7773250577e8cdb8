// One prediction, as gateway/service.py makes it: validate -> key -> coalesce identical requests
// -> Redis -> on a miss, Triton -> answer, then store (answers holding NaN or Infinity, and models
// without a fingerprint, are never stored). Models with row_cache on take these steps per row
// (row_cache.go).
package main

import (
	"context"
	"encoding/binary"
	"log"
	"math"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (g *Gateway) predict(ctx context.Context, request *kserve.ModelInferRequest, model *string) (*kserve.ModelInferResponse, cacheReport, error) {
	info, err := g.triton.ModelInfo(ctx, request.ModelName, request.ModelVersion)
	if err != nil {
		return nil, cacheReport{}, err
	}
	*model = info.Name
	// Triton's order: request parameters, inputs, requested outputs, then the checks against the model
	parameters, err := forwardedParameters(request.Parameters)
	var inputs []Tensor
	var outputs []string
	if err == nil {
		inputs, outputs, err = tensorsFromRequest(request)
	}
	if err == nil {
		err = validate(info, inputs, outputs)
	}
	if err != nil {
		return nil, cacheReport{}, err
	}
	ttl := g.ttl(info)
	if ttl > 0 && info.RowCache && batched(inputs) {
		result, report, err := g.predictRows(ctx, info, inputs, outputs, parameters, ttl)
		if err != nil {
			return nil, report, err
		}
		return inferResponse(info, request.Id, result), report, nil
	}
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
	found, joined, err := lookupOnce(ctx, g.coalescer, flightKey(key, parameters), get, infer, store)
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
	report := cacheReport{state: "MISS"}
	if found.hit {
		report.state = "HIT"
	}
	if err != nil {
		return nil, report, err
	}
	return inferResponse(info, request.Id, found.outputs), report, nil
}

// batched says every input has a batch axis (a model with max_batch_size > 0 may declare none).
func batched(inputs []Tensor) bool {
	for _, t := range inputs {
		if len(t.Shape) == 0 {
			return false
		}
	}
	return len(inputs) > 0
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

// allFinite is false when a floating-point output (FP16, BF16, FP32, FP64) holds NaN or Infinity.
func allFinite(outputs []Tensor) bool {
	for _, t := range outputs {
		size := itemSize[t.Datatype]
		if t.Datatype != "FP16" && t.Datatype != "BF16" && t.Datatype != "FP32" && t.Datatype != "FP64" {
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
	case "BF16":
		return binary.LittleEndian.Uint16(b)&0x7f80 != 0x7f80
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
