package main

import (
	"strings"
	"testing"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The same Triton messages as tests/gateway/test_errors.py, with the same answers.
func TestTritonErrorsMapToTheAnswersOfTheHTTPGateway(t *testing.T) {
	ortFault := "onnxruntime: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned while running " +
		"QEmbedLayerNormalization node. Status Message: input index out of range"
	cases := []struct {
		code          codes.Code
		message       string
		want          codes.Code
		prefix, label string
	}{
		{codes.Unavailable, "Exceeds maximum queue size", codes.ResourceExhausted, "model queue is full: ", "queue_full"},
		{codes.Unavailable, "Request timeout expired", codes.ResourceExhausted, "request timed out in the model queue: ", "queue_timeout"},
		{codes.Internal, ortFault, codes.InvalidArgument, "the model rejected the input: ", ""},
		{codes.Unknown, "Invalid rank for input: image Got: 3 Expected: 4", codes.InvalidArgument, "the model rejected the input: ", ""},
		{codes.Internal, "Got invalid dimensions for input: image for the following indices", codes.InvalidArgument, "the model rejected the input: ", ""},
		{codes.Internal, "onnxruntime: bad things", codes.Internal, "inference server error (INTERNAL): ", ""},
		{codes.Unknown, "stub crashed", codes.Unavailable, "inference server unavailable: ", ""},
		{codes.InvalidArgument, "index out of range", codes.InvalidArgument, "", ""},
		{codes.Unavailable, "failed to connect to all addresses", codes.Unavailable, "inference server unavailable: ", ""},
		{codes.NotFound, "Request for unknown model", codes.NotFound, "", ""},
		{codes.DeadlineExceeded, "Deadline Exceeded", codes.DeadlineExceeded, "inference deadline exceeded", ""},
	}
	for _, c := range cases {
		err, reason := fromTriton(c.code, c.message)
		got := status.Convert(err)
		if got.Code() != c.want || !strings.HasPrefix(got.Message(), c.prefix) || reason != c.label {
			t.Errorf("%v %q -> %v %q (reason %q); want %v %q... (reason %q)",
				c.code, c.message, got.Code(), got.Message(), reason, c.want, c.prefix, c.label)
		}
	}
}

func rangeConfig(parameters map[string]string) *kserve.ModelConfig {
	config := &kserve.ModelConfig{MaxBatchSize: 64, Parameters: map[string]*kserve.ModelParameter{}}
	for key, value := range parameters {
		config.Parameters[key] = &kserve.ModelParameter{StringValue: value}
	}
	return config
}

func TestConfigParametersGiveRangesAndEmptyInputs(t *testing.T) {
	info, err := newModelInfo("minilm", "", &kserve.ModelMetadataResponse{Versions: []string{"1"}},
		rangeConfig(map[string]string{"valid_range:input_ids": "0,30521", "allow_empty:mask": "TRUE",
			"allow_empty:input_ids": "false", "fingerprint": "f"}))
	if err != nil {
		t.Fatal(err)
	}
	if info.ValidRanges["input_ids"] != [2]int64{0, 30521} || !info.AllowEmpty["mask"] || info.AllowEmpty["input_ids"] {
		t.Errorf("ranges %v, allow_empty %v", info.ValidRanges, info.AllowEmpty)
	}
}

func TestAMalformedValidRangeIsAnErrorNamingTheParameter(t *testing.T) {
	for _, value := range []string{"0-9", "9,0", "a,b", "1,2,3", ""} {
		_, err := newModelInfo("m", "1", &kserve.ModelMetadataResponse{},
			rangeConfig(map[string]string{"valid_range:ids": value}))
		want := "model 'm': config parameter valid_range:ids = '" + value + "' is not '<min>,<max>' (inclusive integers)"
		if status.Convert(err).Message() != want {
			t.Errorf("%q: got %v", value, err)
		}
	}
}
