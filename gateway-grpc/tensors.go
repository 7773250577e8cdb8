package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gatewaygrpc/kserve"
)

// Tensor is an input or output as the gateway handles it: canonical little-endian C-order bytes,
// BYTES as 4-byte length-prefixed items (the form Triton's raw contents already use).
type Tensor struct {
	Name     string
	Datatype string
	Shape    []int64
	Data     []byte
}

// itemSize of each fixed-size Triton datatype; BYTES has none.
var itemSize = map[string]int{
	"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8,
	"INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8,
}

// clientError is a mistake in the request (-> INVALID_ARGUMENT, HTTP 400).
type clientError struct{ message string }

func (e clientError) Error() string { return e.message }

func badRequest(format string, args ...interface{}) error {
	return clientError{fmt.Sprintf(format, args...)}
}

// maxElements bounds a tensor's element count so that no size computed from it overflows.
const maxElements = math.MaxInt64 / 16

func elements(shape []int64) (int64, error) {
	count := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s must be non-negative", shapeText(shape))
		}
		if d != 0 && count > maxElements/d {
			return 0, fmt.Errorf("shape %s is too large", shapeText(shape))
		}
		count *= d
	}
	return count, nil
}

// tensorFromRaw checks that raw bytes are what the name, datatype and shape claim.
func tensorFromRaw(name, datatype string, shape []int64, raw []byte) (Tensor, error) {
	count, err := elements(shape)
	if err != nil {
		return Tensor{}, badRequest("input '%s': %v", name, err)
	}
	if datatype == "BYTES" {
		items, offset := int64(0), 0
		for offset < len(raw) {
			if offset+4 > len(raw) {
				return Tensor{}, badRequest("input '%s': truncated BYTES element", name)
			}
			offset += 4 + int(binary.LittleEndian.Uint32(raw[offset:]))
			if offset > len(raw) {
				return Tensor{}, badRequest("input '%s': truncated BYTES element", name)
			}
			items++
		}
		if items != count {
			return Tensor{}, badRequest("input '%s': %d elements do not fill shape %s", name, items, shapeText(shape))
		}
		return Tensor{name, datatype, shape, raw}, nil
	}
	size, known := itemSize[datatype]
	if !known {
		return Tensor{}, badRequest("input '%s': unknown datatype '%s'", name, datatype)
	}
	if int64(len(raw)) != count*int64(size) {
		return Tensor{}, badRequest("input '%s': %d bytes, shape %s of %s needs %d",
			name, len(raw), shapeText(shape), datatype, count*int64(size))
	}
	return Tensor{name, datatype, shape, raw}, nil
}

// tensorFromContents turns typed contents (int_contents, fp32_contents, ...) into canonical bytes.
func tensorFromContents(input *kserve.ModelInferRequest_InferInputTensor) (Tensor, error) {
	name, datatype, c := input.Name, input.Datatype, input.Contents
	if c == nil {
		c = &kserve.InferTensorContents{}
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
			tensor, err = tensorFromRaw(input.Name, input.Datatype, input.Shape, raw[i])
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

func appendLittleEndian(data []byte, value uint64, size int) []byte {
	for i := 0; i < size; i++ {
		data = append(data, byte(value>>(8*i)))
	}
	return data
}

// shapeText writes a shape as Python does, e.g. [1, 1, 8, 8], so messages match the HTTP gateway's.
func shapeText(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
