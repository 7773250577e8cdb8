// KServe v2 gRPC inference requests read into the gateway's tensors, as gateway/kserve.py reads
// KServe v2 HTTP ones: raw or typed contents, requested outputs, and the request parameters that
// are forwarded to Triton (any other is refused, never dropped).
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"gatewaygrpc/kserve"
)

// forwardedRequestParameters are the gRPC request parameters Triton 2.51 honours that leave a
// unary answer as it is: priority and timeout, and triton_enable_empty_final_response, which
// only shapes decoupled streams (perf_analyzer sends it on every gRPC request).
var forwardedRequestParameters = []string{"priority", "timeout", "triton_enable_empty_final_response"}

// forwardedParameters passes those on as given, after the checks Triton's gRPC server makes of
// their types and values (src/grpc/infer_handler.cc, with its messages): a hit must refuse what a
// miss would. Any other key is a client mistake naming it, as on HTTP. None is part of the key.
func forwardedParameters(parameters map[string]*kserve.InferParameter) (map[string]*kserve.InferParameter, error) {
	var unknown []string
	for key, parameter := range parameters {
		switch key {
		case "priority":
			if _, unsigned := parameter.ParameterChoice.(*kserve.InferParameter_Uint64Param); !unsigned {
				signed, ok := parameter.ParameterChoice.(*kserve.InferParameter_Int64Param)
				if !ok {
					return nil, badRequest("invalid value type for 'priority' parameter, expected int64_param or uint64_param.")
				}
				if signed.Int64Param < 0 {
					return nil, badRequest("invalid value for 'priority', expected value >= 0.")
				}
			}
		case "timeout":
			if _, ok := parameter.ParameterChoice.(*kserve.InferParameter_Int64Param); !ok {
				return nil, badRequest("invalid value type for 'timeout' parameter, expected int64_param.")
			}
		case "triton_enable_empty_final_response":
			if _, ok := parameter.ParameterChoice.(*kserve.InferParameter_BoolParam); !ok {
				return nil, badRequest("invalid value type for 'triton_enable_empty_final_response' parameter, expected bool_param.")
			}
		default:
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

// flightGroup is the part of a coalescing key the forwarded parameters make (coalescer.py's
// flight_group): "" without any, else "name=value;..." in name order. Identical requests share one
// Triton call only with equal parameters: a joiner must not inherit another request's timeout or
// priority. The cache key leaves them out: they decide when and whether, never which answer.
func flightGroup(parameters map[string]*kserve.InferParameter) string {
	names := make([]string, 0, len(parameters))
	for name := range parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	group := ""
	for i, name := range names {
		if i > 0 {
			group += ";"
		}
		group += name + "=" + parameterText(parameters[name])
	}
	return group
}

// flightKey is a cache key without forwarded parameters, else key|flightGroup (coalescer.py's
// flight_key): the key identical requests share one Triton call under.
func flightKey(key string, parameters map[string]*kserve.InferParameter) string {
	if group := flightGroup(parameters); group != "" {
		return key + "|" + group
	}
	return key
}

// parameterText is a parameter's value as text: 5, true, or a quoted string.
func parameterText(parameter *kserve.InferParameter) string {
	switch value := parameter.GetParameterChoice().(type) {
	case *kserve.InferParameter_Int64Param:
		return fmt.Sprint(value.Int64Param)
	case *kserve.InferParameter_Uint64Param:
		return fmt.Sprint(value.Uint64Param)
	case *kserve.InferParameter_BoolParam:
		return fmt.Sprint(value.BoolParam)
	case *kserve.InferParameter_DoubleParam:
		return fmt.Sprint(value.DoubleParam)
	}
	return fmt.Sprintf("%q", parameter.GetStringParam())
}

// contentsFields are the typed contents fields of InferTensorContents and the datatypes whose
// values each carries (KServe v2 gRPC protocol; Triton refuses values in another field).
var contentsFields = []struct {
	field     string
	datatypes []string
	count     func(*kserve.InferTensorContents) int
}{
	{"bool_contents", []string{"BOOL"}, func(c *kserve.InferTensorContents) int { return len(c.BoolContents) }},
	{"int_contents", []string{"INT8", "INT16", "INT32"}, func(c *kserve.InferTensorContents) int { return len(c.IntContents) }},
	{"int64_contents", []string{"INT64"}, func(c *kserve.InferTensorContents) int { return len(c.Int64Contents) }},
	{"uint_contents", []string{"UINT8", "UINT16", "UINT32"}, func(c *kserve.InferTensorContents) int { return len(c.UintContents) }},
	{"uint64_contents", []string{"UINT64"}, func(c *kserve.InferTensorContents) int { return len(c.Uint64Contents) }},
	{"fp32_contents", []string{"FP32"}, func(c *kserve.InferTensorContents) int { return len(c.Fp32Contents) }},
	{"fp64_contents", []string{"FP64"}, func(c *kserve.InferTensorContents) int { return len(c.Fp64Contents) }},
	{"bytes_contents", []string{"BYTES"}, func(c *kserve.InferTensorContents) int { return len(c.BytesContents) }},
}

// checkContentsField refuses values sent in another typed contents field than the datatype's
// (int_contents for an FP32 input), naming both fields, as Triton refuses them ("unexpected
// explicit tensor data ... of type 'INT32', expected datatype 'FP32'").
func checkContentsField(name, datatype string, c *kserve.InferTensorContents) error {
	want := ""
	for _, f := range contentsFields {
		for _, d := range f.datatypes {
			if d == datatype {
				want = f.field
			}
		}
	}
	for _, f := range contentsFields {
		if f.field != want && f.count(c) > 0 {
			if want == "" {
				return nil // no typed field: the datatype's own message follows
			}
			return badRequest("input '%s': %s values go in %s, not %s", name, datatype, want, f.field)
		}
	}
	return nil
}

// tensorFromContents turns typed contents (int_contents, fp32_contents, ...) into canonical bytes.
func tensorFromContents(input *kserve.ModelInferRequest_InferInputTensor) (Tensor, error) {
	name, datatype, c := input.Name, input.Datatype, input.Contents
	if c == nil {
		c = &kserve.InferTensorContents{}
	}
	if err := checkContentsField(name, datatype, c); err != nil {
		return Tensor{}, err
	}
	var data []byte
	var count int
	inRange := func(v, low, high int64) bool { return v >= low && v <= high }
	switch datatype {
	case "BOOL":
		count = len(c.BoolContents)
		for _, v := range c.BoolContents {
			b := byte(0)
			if v {
				b = 1
			}
			data = append(data, b)
		}
	case "INT8", "INT16", "INT32":
		size := itemSize[datatype]
		bound := int64(1) << (8*size - 1)
		count = len(c.IntContents)
		for _, v := range c.IntContents {
			if !inRange(int64(v), -bound, bound-1) {
				return Tensor{}, badRequest("input '%s': values out of range for %s", name, datatype)
			}
			data = appendLittleEndian(data, uint64(v), size)
		}
	case "UINT8", "UINT16", "UINT32":
		size := itemSize[datatype]
		count = len(c.UintContents)
		for _, v := range c.UintContents {
			if !inRange(int64(v), 0, int64(1)<<(8*size)-1) {
				return Tensor{}, badRequest("input '%s': values out of range for %s", name, datatype)
			}
			data = appendLittleEndian(data, uint64(v), size)
		}
	case "INT64":
		count = len(c.Int64Contents)
		for _, v := range c.Int64Contents {
			data = binary.LittleEndian.AppendUint64(data, uint64(v))
		}
	case "UINT64":
		count = len(c.Uint64Contents)
		for _, v := range c.Uint64Contents {
			data = binary.LittleEndian.AppendUint64(data, v)
		}
	case "FP32":
		count = len(c.Fp32Contents)
		for _, v := range c.Fp32Contents {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
	case "FP64":
		count = len(c.Fp64Contents)
		for _, v := range c.Fp64Contents {
			data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
		}
	case "BYTES":
		count = len(c.BytesContents)
		for _, v := range c.BytesContents {
			data = binary.LittleEndian.AppendUint32(data, uint32(len(v)))
			data = append(data, v...)
		}
	default:
		if _, known := itemSize[datatype]; !known {
			return Tensor{}, badRequest("input '%s': unknown datatype '%s'", name, datatype)
		}
		return Tensor{}, badRequest("input '%s': datatype '%s' needs raw contents", name, datatype)
	}
	want, err := elements(input.Shape)
	if err != nil {
		return Tensor{}, badRequest("input '%s': %v", name, err)
	}
	if int64(count) != want {
		return Tensor{}, badRequest("input '%s': %d values do not fill shape %s", name, count, shapeText(input.Shape))
	}
	return Tensor{name, datatype, input.Shape, data}, nil
}

// tensorsFromRequest reads a ModelInferRequest's inputs and requested outputs (nil: all).
func tensorsFromRequest(request *kserve.ModelInferRequest) ([]Tensor, []string, error) {
	raw := request.RawInputContents
	if len(raw) > 0 && len(raw) != len(request.Inputs) {
		return nil, nil, badRequest("raw_input_contents must hold one entry per input")
	}
	inputs := make([]Tensor, 0, len(request.Inputs))
	for i, input := range request.Inputs {
		if len(input.Parameters) > 0 {
			return nil, nil, badRequest("input '%s': parameters %s are not supported by the gateway",
				input.Name, listText(sortedKeys(input.Parameters)))
		}
		var tensor Tensor
		var err error
		if len(raw) > 0 {
			if input.Contents != nil {
				return nil, nil, badRequest("input '%s': contents and raw_input_contents are exclusive", input.Name)
			}
			tensor, err = tensorFromRaw("input", input.Name, input.Datatype, input.Shape, raw[i])
		} else {
			tensor, err = tensorFromContents(input)
		}
		if err != nil {
			return nil, nil, err
		}
		inputs = append(inputs, tensor)
	}
	var outputs []string
	for _, output := range request.Outputs {
		if len(output.Parameters) > 0 {
			return nil, nil, badRequest("output '%s': parameters %s are not supported by the gateway",
				output.Name, listText(sortedKeys(output.Parameters)))
		}
		outputs = append(outputs, output.Name)
	}
	return inputs, outputs, nil
}
