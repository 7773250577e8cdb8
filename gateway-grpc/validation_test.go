package main

import (
	"strings"
	"testing"

	"gatewaygrpc/kserve"
)

func digitsInfo() *ModelInfo {
	return &ModelInfo{
		Name: "digits", Version: "1", Fingerprint: "f", MaxBatchSize: 64,
		Inputs:  map[string]TensorInfo{"image": {"FP32", []int64{-1, 1, 8, 8}}},
		Outputs: map[string]TensorInfo{"logits": {"FP32", []int64{-1, 10}}},
	}
}

func TestValidRequestsPassAndMistakesGetTheHTTPGatewaysMessages(t *testing.T) {
	image := digitsImage()
	if err := validate(digitsInfo(), []Tensor{image}, []string{"logits"}); err != nil {
		t.Fatalf("a valid request failed: %v", err)
	}
	flat := image
	flat.Shape = []int64{1, 64}
	wide := image
	wide.Shape = []int64{65, 1, 8, 8}
	doubles := image
	doubles.Datatype = "FP64"
	other := image
	other.Name = "pixels"
	for message, request := range map[string][]Tensor{
		"input 'image': shape [1, 64], model expects [-1, 1, 8, 8] (first dimension = batch)": {flat},
		"batch size 65 is outside 1..64 (max_batch_size)":                                     {wide},
		"input 'image': datatype FP64, model expects FP32":                                    {doubles},
		"model 'digits' has no input ['pixels']; inputs: ['image']":                           {other},
		"model 'digits' needs input ['image']":                                                {},
		"an input is given more than once":                                                    {image, image},
	} {
		err := validate(digitsInfo(), request, nil)
		if err == nil || err.Error() != message {
			t.Errorf("got %v, want %q", err, message)
		}
	}
	if err := validate(digitsInfo(), []Tensor{image}, []string{"probabilities"}); err == nil ||
		!strings.Contains(err.Error(), "has no output 'probabilities'") {
		t.Errorf("an unknown output passed: %v", err)
	}
}

func TestTypedContentsBecomeTheSameBytesAsRawContents(t *testing.T) {
	values := make([]float32, 64)
	for i := range values {
		values[i] = float32(i)
	}
	typed, err := tensorFromContents(&kserve.ModelInferRequest_InferInputTensor{
		Name: "image", Datatype: "FP32", Shape: []int64{1, 1, 8, 8},
		Contents: &kserve.InferTensorContents{Fp32Contents: values},
	})
	if err != nil || cacheKey("d", "f", []Tensor{typed}, nil) != cacheKey("d", "f", []Tensor{digitsImage()}, nil) {
		t.Fatalf("typed contents gave another tensor: %v", err)
	}
}

func TestTensorsThatAreNotWhatTheyClaimAreRejected(t *testing.T) {
	for message, build := range map[string]func() (Tensor, error){
		"input 'x': 4 bytes, shape [2] of FP32 needs 8": func() (Tensor, error) {
			return tensorFromRaw("x", "FP32", []int64{2}, make([]byte, 4))
		},
		"input 'x': truncated BYTES element": func() (Tensor, error) {
			return tensorFromRaw("x", "BYTES", []int64{1}, []byte{9, 0, 0, 0, 'a'})
		},
		"input 'x': values out of range for INT8": func() (Tensor, error) {
			return tensorFromContents(&kserve.ModelInferRequest_InferInputTensor{
				Name: "x", Datatype: "INT8", Shape: []int64{1}, Contents: &kserve.InferTensorContents{IntContents: []int32{300}},
			})
		},
		"input 'x': datatype 'FP16' needs raw contents": func() (Tensor, error) {
			return tensorFromContents(&kserve.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP16", Shape: []int64{1}})
		},
		"input 'x': unknown datatype 'FP128'": func() (Tensor, error) {
			return tensorFromRaw("x", "FP128", []int64{1}, make([]byte, 16))
		},
	} {
		if _, err := build(); err == nil || err.Error() != message {
			t.Errorf("got %v, want %q", err, message)
		}
	}
}

func TestShapesWhoseElementCountOverflowsAreRejected(t *testing.T) {
	for _, shape := range [][]int64{{1, 4294967296, 4294967296}, {1, 7, 0x6DB6DB6DB6DB6DB7}} {
		if _, err := tensorFromRaw("x", "FP32", shape, make([]byte, 4)); err == nil {
			t.Errorf("shape %v passed", shape)
		}
	}
}

func TestAnEmptyShapeOnABatchingModelIsAnAnswerNotAPanic(t *testing.T) {
	info := digitsInfo()
	info.Inputs["image"] = TensorInfo{"FP32", []int64{}} // metadata and config disagree
	if err := validate(info, []Tensor{{Name: "image", Datatype: "FP32", Data: make([]byte, 4)}}, nil); err != nil {
		t.Errorf("got %v", err)
	}
}

func TestInputsThatDisagreeOnTheBatchSizeAreNamedLikePythonDoes(t *testing.T) {
	info := digitsInfo()
	info.Inputs["mask"] = TensorInfo{"FP32", []int64{-1, 1, 8, 8}}
	image, mask := digitsImage(), digitsImage()
	mask.Name, mask.Shape = "mask", []int64{2, 1, 8, 8}
	err := validate(info, []Tensor{image, mask}, nil)
	if err == nil || err.Error() != "inputs disagree on the batch size: [1, 2]" {
		t.Errorf("got %v", err)
	}
}

func TestRawAndTypedContentsTogetherAreRejected(t *testing.T) {
	request := &kserve.ModelInferRequest{
		Inputs: []*kserve.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1},
			Contents: &kserve.InferTensorContents{Fp32Contents: []float32{1}},
		}},
		RawInputContents: [][]byte{make([]byte, 4)},
	}
	if _, _, err := tensorsFromRequest(request); err == nil {
		t.Error("accepted")
	}
}

func tokenInfo() *ModelInfo {
	return &ModelInfo{
		Name: "minilm", Version: "1", Fingerprint: "f", MaxBatchSize: 64,
		Inputs:      map[string]TensorInfo{"input_ids": {"INT64", []int64{-1, -1}}},
		Outputs:     map[string]TensorInfo{"embedding": {"FP32", []int64{-1, 384}}},
		ValidRanges: map[string][2]int64{"input_ids": {0, 30521}},
		AllowEmpty:  map[string]bool{},
	}
}

func ids(datatype string, shape []int64, values ...int64) Tensor {
	var data []byte
	for _, v := range values {
		data = appendLittleEndian(data, uint64(v), itemSize[datatype])
	}
	return Tensor{"input_ids", datatype, shape, data}
}

// The messages are gateway/validation.py's (tests/gateway/test_validation.py checks the same).
func TestTokenIdsOutsideTheValidRangeAreRefusedNamingTheFirstOne(t *testing.T) {
	if err := validate(tokenInfo(), []Tensor{ids("INT64", []int64{1, 3}, 0, 101, 30521)}, nil); err != nil {
		t.Errorf("ids at the bounds were refused: %v", err)
	}
	for _, c := range []struct {
		tensor Tensor
		value  string
	}{
		{ids("INT64", []int64{1, 4}, 101, 40000, -1, 102), "40000"},
		{ids("INT64", []int64{1, 2}, 101, -5), "-5"},
		{ids("UINT64", []int64{1, 1}, -1), "18446744073709551615"},
		{ids("INT32", []int64{1, 1}, 30522), "30522"},
	} {
		info := tokenInfo()
		info.Inputs["input_ids"] = TensorInfo{c.tensor.Datatype, []int64{-1, -1}}
		want := "input 'input_ids': value " + c.value +
			" is outside the valid range [0, 30521] (config parameter valid_range:input_ids)"
		if err := validate(info, []Tensor{c.tensor}, nil); err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestAnEmptySequenceIsRefusedUnlessTheModelAllowsIt(t *testing.T) {
	empty := ids("INT64", []int64{1, 0})
	want := "input 'input_ids': shape [1, 0] has an empty axis, which the model does not accept " +
		"(config parameter allow_empty:input_ids)"
	if err := validate(tokenInfo(), []Tensor{empty}, nil); err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	allowed := tokenInfo()
	allowed.AllowEmpty["input_ids"] = true
	if err := validate(allowed, []Tensor{empty}, nil); err != nil {
		t.Errorf("an allowed empty input was refused: %v", err)
	}
}

func TestOnlyVariableAxesCountAsEmpty(t *testing.T) {
	info := tokenInfo()
	info.Inputs["input_ids"] = TensorInfo{"INT64", []int64{-1, 0}} // the model declares size 0
	if err := validate(info, []Tensor{ids("INT64", []int64{1, 0})}, nil); err != nil {
		t.Errorf("a declared zero-size axis was refused: %v", err)
	}
}
