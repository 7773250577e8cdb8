// What the gateway reads from a model's metadata and config, as gateway/model_config.py reads it:
// max_batch_size, the inputs and outputs, the valid_range:<input>, max_length:<input>,
// shared_axis:<axis name>, allow_empty:<input> and row_cache
// parameters (the fingerprint, and whether an ensemble's steps batch, are resolved by the Triton
// client: an ensemble needs its steps' configs).
package main

import (
	"strconv"
	"strings"
	"time"

	"gatewaygrpc/kserve"
	"gatewaygrpc/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func parameter(config *kserve.ModelConfig, key string) string {
	if p := config.GetParameters()[key]; p != nil {
		return p.StringValue
	}
	return ""
}

func newModelInfo(model, version string, metadata *kserve.ModelMetadataResponse, config *kserve.ModelConfig) (*ModelInfo, error) {
	served := version
	if served == "" {
		best := int64(-1)
		for _, v := range metadata.Versions {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > best {
				best, served = n, v
			}
		}
		if served == "" {
			served = "1"
		}
	}
	info := &ModelInfo{
		Name: model, Version: served, MaxBatchSize: int64(config.GetMaxBatchSize()),
		Inputs: map[string]TensorInfo{}, Outputs: map[string]TensorInfo{},
		ValidRanges: map[string][2]int64{}, MaxLengths: map[string]int64{}, AllowEmpty: map[string]bool{},
		SharedAxes: map[string][]AxisRef{},
		fetched:    time.Now(),
	}
	for _, t := range metadata.Inputs {
		info.Inputs[t.Name] = TensorInfo{t.Datatype, t.Shape}
	}
	for _, t := range metadata.Outputs {
		info.Outputs[t.Name] = TensorInfo{t.Datatype, t.Shape}
	}
	for key, p := range config.GetParameters() {
		if name := strings.TrimPrefix(key, shared.AllowEmptyPrefix); name != key {
			info.AllowEmpty[name] = strings.ToLower(strings.TrimSpace(p.StringValue)) == "true"
		}
		if name := strings.TrimPrefix(key, shared.ValidRangePrefix); name != key {
			bounds, ok := parseRange(p.StringValue)
			if !ok {
				return nil, status.Errorf(codes.Internal, "model '%s': config parameter %s = '%s' is not '<min>,<max>' (inclusive integers)",
					model, key, p.StringValue)
			}
			info.ValidRanges[name] = bounds
		}
		if name := strings.TrimPrefix(key, shared.MaxLengthPrefix); name != key {
			limit, ok := parseLength(p.StringValue)
			if !ok {
				return nil, status.Errorf(codes.Internal, "model '%s': config parameter %s = '%s' is not '<n>' (a positive integer)",
					model, key, p.StringValue)
			}
			info.MaxLengths[name] = limit
		}
		if name := strings.TrimPrefix(key, shared.SharedAxisPrefix); name != key {
			members, ok := parseSharedAxis(p.StringValue)
			if !ok {
				return nil, status.Errorf(codes.Internal, "model '%s': config parameter %s = '%s' is not '<input>:<axis>,<input>:<axis>[,...]'",
					model, key, p.StringValue)
			}
			info.SharedAxes[name] = members
		}
	}
	return info, nil
}

// parseSharedAxis reads "<input>:<axis>,<input>:<axis>[,...]": two or more members, each an input
// name (everything before its last colon, spaces around it dropped, not empty) and an axis (a
// decimal integer in 0..int64 max, spaces around allowed), as gateway/model_config.py's
// shared_axes accepts.
func parseSharedAxis(value string) ([]AxisRef, bool) {
	items := strings.Split(value, ",")
	members := make([]AxisRef, 0, len(items))
	for _, item := range items {
		colon := strings.LastIndex(item, ":")
		if colon < 0 {
			return nil, false
		}
		name, axisText := strings.TrimSpace(item[:colon]), strings.TrimSpace(item[colon+1:])
		axis, err := strconv.ParseInt(axisText, 10, 64)
		if name == "" || err != nil || strings.HasPrefix(axisText, "-") {
			return nil, false
		}
		members = append(members, AxisRef{name, axis})
	}
	return members, len(members) >= 2
}

// parseRange reads "<min>,<max>": decimal integers within int64, spaces around each allowed,
// min <= max (gateway/model_config.py accepts exactly the same).
func parseRange(value string) ([2]int64, bool) {
	parts := strings.Split(value, ",")
	if len(parts) != 2 {
		return [2]int64{}, false
	}
	low, errLow := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
	high, errHigh := strconv.ParseInt(strings.TrimSpace(parts[1]), 10, 64)
	return [2]int64{low, high}, errLow == nil && errHigh == nil && low <= high
}

// parseLength reads "<n>": one decimal integer in 1..int64 max, spaces around allowed
// (gateway/model_config.py's max_lengths accepts exactly the same).
func parseLength(value string) (int64, bool) {
	text := strings.TrimSpace(value)
	if strings.HasPrefix(text, "-") {
		return 0, false
	}
	limit, err := strconv.ParseInt(text, 10, 64)
	return limit, err == nil && limit >= 1
}

// rowCache says whether answers are cached per row, as gateway/model_config.py's row_cache:
// never without a batch axis; else the row_cache parameter ("true"/"false", any case and spaces),
// by default on where the model (an ensemble: every step) batches dynamically and every output has
// a fixed shape after the batch axis.
func rowCache(config *kserve.ModelConfig, stepsBatch bool) (bool, error) {
	if config.GetMaxBatchSize() <= 0 {
		return false, nil
	}
	p := config.GetParameters()[shared.RowCacheParameter]
	if p == nil {
		for _, output := range config.GetOutput() {
			for _, d := range output.Dims {
				if d < 0 {
					return false, nil
				}
			}
		}
		return stepsBatch, nil
	}
	switch strings.ToLower(strings.TrimSpace(p.StringValue)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, status.Errorf(codes.Internal, "model '%s': config parameter %s = '%s' is not 'true' or 'false'",
		config.GetName(), shared.RowCacheParameter, p.StringValue)
}
