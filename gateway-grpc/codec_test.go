package main

import (
	"bytes"
	"testing"
)

// The values the Python gateway writes are in the conformance corpus (corpus_test.go stores each
// and reads it back on a hit); these are the codec's own edges.
var logitsValue = encodeOutputs([]Tensor{{"logits", "FP32", []int64{1, 2}, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}}})

func TestAValueDecodesToWhatWasEncoded(t *testing.T) {
	outputs, err := decodeOutputs(logitsValue)
	if err != nil || len(outputs) != 1 || outputs[0].Name != "logits" || shapeText(outputs[0].Shape) != "[1, 2]" {
		t.Fatalf("decoded %+v, %v", outputs, err)
	}
	if !bytes.Equal(encodeOutputs(outputs), logitsValue) {
		t.Errorf("re-encoded %q, first %q", encodeOutputs(outputs), logitsValue)
	}
}

func TestTruncatedOrPaddedValuesAreRejected(t *testing.T) {
	for name, value := range map[string][]byte{
		"truncated": logitsValue[:len(logitsValue)-1],
		"padded":    append(append([]byte(nil), logitsValue...), 0),
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
