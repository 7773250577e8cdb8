package main

import (
	"encoding/binary"
	"math"
	"testing"
)

func digitsImage() Tensor {
	data := make([]byte, 0, 256)
	for i := 0; i < 64; i++ {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i)))
	}
	return Tensor{"image", "FP32", []int64{1, 1, 8, 8}, data}
}

// The keys the Python gateway computes for the same requests are in the conformance corpus
// (corpus_test.go); these are the properties of the key itself.
func TestAnotherFingerprintDatatypeShapeOrOutputGivesAnotherKey(t *testing.T) {
	image := digitsImage()
	base := cacheKey("digits", "f1", []Tensor{image}, nil)
	reshaped := image
	reshaped.Shape = []int64{1, 64}
	retyped := image
	retyped.Datatype = "INT32"
	for name, key := range map[string]string{
		"fingerprint": cacheKey("digits", "f2", []Tensor{image}, nil),
		"shape":       cacheKey("digits", "f1", []Tensor{reshaped}, nil),
		"datatype":    cacheKey("digits", "f1", []Tensor{retyped}, nil),
		"outputs":     cacheKey("digits", "f1", []Tensor{image}, []string{"logits"}),
	} {
		if key == base {
			t.Errorf("another %s gave the same key", name)
		}
	}
}
