package main

import (
	"bytes"
	"testing"
)

// Written by gateway/codec.py's encode_outputs for logits [1, 2] FP32 = [1.0, 2.0].
var pythonValue = append(append([]byte{27, 0, 0, 0}, `[["logits","FP32",[1,2],8]]`...),
	0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)

func TestAValueWrittenByThePythonGatewayDecodes(t *testing.T) {
	outputs, err := decodeOutputs(pythonValue)
	if err != nil || len(outputs) != 1 || outputs[0].Name != "logits" || shapeText(outputs[0].Shape) != "[1, 2]" {
		t.Fatalf("decoded %+v, %v", outputs, err)
	}
	if !bytes.Equal(encodeOutputs(outputs), pythonValue) {
		t.Errorf("re-encoded %q, Python wrote %q", encodeOutputs(outputs), pythonValue)
	}
}

func TestTruncatedOrPaddedValuesAreRejected(t *testing.T) {
	for name, value := range map[string][]byte{
		"truncated": pythonValue[:len(pythonValue)-1],
		"padded":    append(append([]byte(nil), pythonValue...), 0),
		"empty":     {},
		"garbage":   []byte("not a value at all"),
	} {
		if _, err := decodeOutputs(value); err == nil {
			t.Errorf("%s value decoded", name)
		}
	}
}

func TestAScalarOutputIsWrittenWithAnEmptyShapeAsPythonWritesIt(t *testing.T) {
	value := encodeOutputs([]Tensor{{Name: "score", Datatype: "FP32", Data: []byte{0, 0, 0, 0x3f}}})
	if !bytes.Contains(value, []byte(`[["score","FP32",[],4]]`)) {
		t.Errorf("header %q", value)
	}
}

func TestALengthThatWouldOverflowIsRejectedNotAPanic(t *testing.T) {
	header := `[["y","FP32",[1],9223372036854775807]]`
	value := append([]byte{byte(len(header)), 0, 0, 0}, header...)
	if _, err := decodeOutputs(append(value, 1, 2, 3, 4)); err == nil {
		t.Error("decoded")
	}
}
