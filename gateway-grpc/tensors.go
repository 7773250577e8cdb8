package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	"INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8,
}

// clientError is a mistake in the request (-> INVALID_ARGUMENT, HTTP 400).
type clientError struct{ message string }

func (e clientError) Error() string { return e.message }

func badRequest(format string, args ...interface{}) error {
	return clientError{fmt.Sprintf(format, args...)}
}

// maxElements bounds a tensor's element count so that no size computed from it overflows.
const maxElements = math.MaxInt64 / 16

// maxRank is the most dimensions a shape may have: numpy's limit, which gateway/tensors.py's
// MAX_RANK keeps (both front ends refuse a deeper shape alike).
const maxRank = 32

func elements(shape []int64) (int64, error) {
	if len(shape) > maxRank {
		shown := shapeText(shape[:maxRank])
		return 0, fmt.Errorf("shape %s, ...] has %d dimensions, more than the %d supported",
			shown[:len(shown)-1], len(shape), maxRank)
	}
	count, spanned := int64(1), int64(1) // spanned: the product without zeros, as tensors.py bounds it
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s must be non-negative", shapeText(shape))
		}
		if d != 0 {
			if spanned > maxElements/d {
				return 0, fmt.Errorf("shape %s is too large", shapeText(shape))
			}
			spanned *= d
		}
		count *= d
	}
	return count, nil
}

// tensorFromRaw checks that raw bytes are what the name, datatype and shape claim; errors name
// the tensor as role ("input", or "output" for Triton's answers and stored values).
func tensorFromRaw(role, name, datatype string, shape []int64, raw []byte) (Tensor, error) {
	count, err := elements(shape)
	if err != nil {
		return Tensor{}, badRequest("%s '%s': %v", role, name, err)
	}
	if datatype == "BYTES" {
		items, offset := int64(0), 0
		for offset < len(raw) {
			if offset+4 > len(raw) {
				return Tensor{}, badRequest("%s '%s': truncated BYTES element", role, name)
			}
			offset += 4 + int(binary.LittleEndian.Uint32(raw[offset:]))
			if offset > len(raw) {
				return Tensor{}, badRequest("%s '%s': truncated BYTES element", role, name)
			}
			items++
		}
		if items != count {
			return Tensor{}, badRequest("%s '%s': %d elements do not fill shape %s", role, name, items, shapeText(shape))
		}
		return Tensor{name, datatype, shape, raw}, nil
	}
	size, known := itemSize[datatype]
	if !known {
		return Tensor{}, badRequest("%s '%s': unknown datatype '%s'", role, name, datatype)
	}
	if int64(len(raw)) != count*int64(size) {
		return Tensor{}, badRequest("%s '%s': %d bytes, shape %s of %s needs %d",
			role, name, len(raw), shapeText(shape), datatype, count*int64(size))
	}
	return Tensor{name, datatype, shape, raw}, nil
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

// rows splits a tensor of shape [batch, ...] into its rows: row i has shape Shape[1:] and its own
// canonical bytes (for BYTES, its items with their length prefixes). The tensor is valid
// (tensorFromRaw checked it), so its bytes fill its shape.
func rows(t Tensor) []Tensor {
	batch := int(t.Shape[0])
	shape := t.Shape[1:]
	perRow, _ := elements(shape)
	split := make([]Tensor, batch)
	offset := 0
	for i := range split {
		end := offset + int(perRow)*itemSize[t.Datatype]
		if t.Datatype == "BYTES" {
			end = offset
			for item := int64(0); item < perRow; item++ {
				end += 4 + int(binary.LittleEndian.Uint32(t.Data[end:]))
			}
		}
		split[i] = Tensor{t.Name, t.Datatype, shape, t.Data[offset:end:end]}
		offset = end
	}
	return split
}

// pickRows is the inputs holding only the rows given (indices into their batch), in that order.
func pickRows(inputs []Tensor, picked []int) []Tensor {
	if len(inputs) > 0 && len(picked) == int(inputs[0].Shape[0]) {
		inOrder := true
		for i, row := range picked {
			inOrder = inOrder && i == row
		}
		if inOrder {
			return inputs
		}
	}
	batch := make([]Tensor, len(inputs))
	for i, t := range inputs {
		split := rows(t)
		data := []byte{}
		for _, row := range picked {
			data = append(data, split[row].Data...)
		}
		batch[i] = Tensor{t.Name, t.Datatype, append([]int64{int64(len(picked))}, t.Shape[1:]...), data}
	}
	return batch
}

// stackRows joins rows (each a model's outputs, one row each, in the same output order) into one
// answer of len(rows) rows, in the first row's output order; an error when the rows of an output
// differ in shape (a model forced to row_cache "true" whose outputs have a variable axis).
func stackRows(model string, answers [][]Tensor) ([]Tensor, error) {
	stacked := make([]Tensor, len(answers[0]))
	for i, first := range answers[0] {
		out := Tensor{first.Name, first.Datatype, append([]int64{int64(len(answers))}, first.Shape...), nil}
		for _, answer := range answers {
			row := outputNamed(answer, first.Name)
			if shapeText(row.Shape) != shapeText(first.Shape) {
				return nil, status.Errorf(codes.Internal, "model '%s': cached rows of output '%s' differ in shape (%s, %s); set its config parameter row_cache to \"false\"",
					model, first.Name, shapeText(first.Shape), shapeText(row.Shape))
			}
			out.Data = append(out.Data, row.Data...)
		}
		stacked[i] = out
	}
	return stacked, nil
}

func outputNamed(outputs []Tensor, name string) Tensor {
	for _, t := range outputs {
		if t.Name == name {
			return t
		}
	}
	return Tensor{}
}
