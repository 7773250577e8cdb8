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

func words() Tensor {
	data := []byte{2, 0, 0, 0, 'h', 'i', 5, 0, 0, 0, 't', 'h', 'e', 'r', 'e'}
	return Tensor{"text", "BYTES", []int64{2}, data}
}

// The expected keys are what gateway/cache_key.py computes for the same requests, so an HTTP and a
// gRPC request for the same tensor share one cache entry.
func TestKeysEqualThePythonGatewaysKeys(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{cacheKey("digits", "sha256:abc", []Tensor{digitsImage()}, nil), "pred:digits:86ea2011c73574708a04d16686e5f663"},
		{cacheKey("m", "version:1", []Tensor{words(), digitsImage()}, []string{"z", "a", "z"}), "pred:m:3f2c564b581896aa74c94de9392a6192"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("key %s, Python computes %s", c.got, c.want)
		}
	}
}

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
