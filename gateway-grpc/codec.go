package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// encodeOutputs writes outputs in gateway/codec.py's layout: a 4-byte little-endian header length,
// a JSON header [[name, datatype, shape, nbytes], ...], then each output's bytes in header order.
func encodeOutputs(outputs []Tensor) []byte {
	header := make([][]interface{}, len(outputs))
	size := 0
	for i, t := range outputs {
		shape := t.Shape
		if shape == nil { // a scalar: [] as Python writes it, never null
			shape = []int64{}
		}
		header[i] = []interface{}{t.Name, t.Datatype, shape, len(t.Data)}
		size += len(t.Data)
	}
	// as orjson writes it: <, > and & as themselves (json.Marshal would escape them)
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	encoder.Encode(header) // strings, ints and int slices always encode
	head := bytes.TrimSuffix(buffer.Bytes(), []byte("\n"))
	value := make([]byte, 4, 4+len(head)+size)
	binary.LittleEndian.PutUint32(value, uint32(len(head)))
	value = append(value, head...)
	for _, t := range outputs {
		value = append(value, t.Data...)
	}
	return value
}

var errBadValue = errors.New("cached value is truncated or has trailing bytes")

// decodeOutputs reads a value written by either gateway; anything else is an error.
func decodeOutputs(value []byte) ([]Tensor, error) {
	if len(value) < 4 {
		return nil, errBadValue
	}
	end := 4 + int(binary.LittleEndian.Uint32(value))
	if end > len(value) || end < 4 {
		return nil, errBadValue
	}
	var header [][]json.RawMessage
	if err := json.Unmarshal(value[4:end], &header); err != nil {
		return nil, fmt.Errorf("cached value header: %w", err)
	}
	outputs := make([]Tensor, 0, len(header))
	offset := end
	for _, entry := range header {
		var t Tensor
		var nbytes int
		if len(entry) != 4 {
			return nil, errBadValue
		}
		for i, target := range []interface{}{&t.Name, &t.Datatype, &t.Shape, &nbytes} {
			if err := json.Unmarshal(entry[i], target); err != nil {
				return nil, fmt.Errorf("cached value header: %w", err)
			}
		}
		if nbytes < 0 || nbytes > len(value)-offset {
			return nil, errBadValue
		}
		t.Data = value[offset : offset+nbytes]
		offset += nbytes
		if _, err := tensorFromRaw("output", t.Name, t.Datatype, t.Shape, t.Data); err != nil {
			return nil, fmt.Errorf("cached value: %w", err)
		}
		outputs = append(outputs, t)
	}
	if offset != len(value) {
		return nil, errBadValue
	}
	return outputs, nil
}
