package main

import (
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sort"

	"golang.org/x/crypto/blake2b"
)

// keyTag keys the BLAKE2b hash; it must equal gateway/cache_key.py's, so that an HTTP and a gRPC
// request with the same tensor share one cache entry.
var keyTag = []byte("tsgateway-v2")

// cacheKey is the 128-bit BLAKE2b over model, fingerprint, each input's name, datatype, shape and
// canonical bytes in name order, and the requested outputs in name order; every field is
// length-prefixed. The layout is gateway/cache_key.py's.
func cacheKey(model, fingerprint string, inputs []Tensor, outputs []string) string {
	digest, _ := blake2b.New(16, keyTag)
	tensorFields(digest, model, fingerprint, inputs, outputs)
	return "pred:" + model + ":" + hex.EncodeToString(digest.Sum(nil))
}

func tensorFields(digest hash.Hash, model, fingerprint string, inputs []Tensor, outputs []string) {
	field(digest, []byte(model))
	field(digest, []byte(fingerprint))
	ordered := append([]Tensor(nil), inputs...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Name < ordered[j].Name })
	for _, t := range ordered {
		field(digest, []byte(t.Name))
		field(digest, []byte(t.Datatype))
		shape := make([]byte, 0, 8*len(t.Shape))
		for _, d := range t.Shape {
			shape = binary.LittleEndian.AppendUint64(shape, uint64(d))
		}
		field(digest, shape)
		field(digest, t.Data)
	}
	for _, name := range uniqueSorted(outputs) {
		field(digest, append([]byte("out:"), name...))
	}
}

func field(digest hash.Hash, data []byte) {
	var length [8]byte
	binary.LittleEndian.PutUint64(length[:], uint64(len(data)))
	digest.Write(length[:])
	digest.Write(data)
}

type ordered interface{ ~int64 | ~string }

// uniqueSorted is items without repeats, in ascending order.
func uniqueSorted[T ordered](items []T) []T {
	seen := map[T]bool{}
	unique := []T{}
	for _, item := range items {
		if !seen[item] {
			seen[item] = true
			unique = append(unique, item)
		}
	}
	sort.Slice(unique, func(i, j int) bool { return unique[i] < unique[j] })
	return unique
}

// rowKeys is one key per row of a batched request, "row:<model>:<32 hex digits>", as
// gateway/cache_key.py's row_keys: a leading "row" field, then cacheKey's fields over row i of
// every input (its shape without the batch axis) and the requested outputs.
func rowKeys(model, fingerprint string, inputs []Tensor, outputs []string) []string {
	split := make([][]Tensor, len(inputs))
	for i, t := range inputs {
		split[i] = rows(t)
	}
	keys := make([]string, inputs[0].Shape[0])
	for row := range keys {
		digest, _ := blake2b.New(16, keyTag)
		field(digest, []byte("row"))
		rowInputs := make([]Tensor, len(inputs))
		for i := range inputs {
			rowInputs[i] = split[i][row]
		}
		tensorFields(digest, model, fingerprint, rowInputs, outputs)
		keys[row] = "row:" + model + ":" + hex.EncodeToString(digest.Sum(nil))
	}
	return keys
}
