package main

import (
	"encoding/binary"
	"math"
	"testing"

	"gatewaygrpc/kserve"
)

func TestPriorityAndTimeoutAreForwardedAndOtherRequestParametersRefused(t *testing.T) {
	given := map[string]*kserve.InferParameter{
		"priority":                           {ParameterChoice: &kserve.InferParameter_Uint64Param{Uint64Param: 1}},
		"timeout":                            {ParameterChoice: &kserve.InferParameter_Int64Param{Int64Param: 1000}},
		"triton_enable_empty_final_response": {ParameterChoice: &kserve.InferParameter_BoolParam{BoolParam: true}},
	}
	if forwarded, err := forwardedParameters(given); err != nil || len(forwarded) != 3 {
		t.Fatalf("forwarded %v, %v", forwarded, err)
	}
	given["sequence_id"] = &kserve.InferParameter{ParameterChoice: &kserve.InferParameter_Int64Param{Int64Param: 4}}
	given["custom"] = &kserve.InferParameter{}
	want := "request parameters ['custom', 'sequence_id'] are not supported by the gateway; " +
		"supported: ['priority', 'timeout', 'triton_enable_empty_final_response']"
	if _, err := forwardedParameters(given); err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestAnswersHoldingNaNOrInfinityAreNotFinite(t *testing.T) {
	fp32 := func(v float32) Tensor {
		return Tensor{"y", "FP32", []int64{1}, binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))}
	}
	fp64 := func(v float64) Tensor {
		return Tensor{"y", "FP64", []int64{1}, binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))}
	}
	fp16 := func(bits uint16) Tensor {
		return Tensor{"y", "FP16", []int64{1}, binary.LittleEndian.AppendUint16(nil, bits)}
	}
	for _, finite := range []Tensor{fp32(1.5), fp64(-2), fp16(0x7bff), words(), digitsImage()} {
		if !allFinite([]Tensor{finite}) {
			t.Errorf("%s %v counted as not finite", finite.Datatype, finite.Data)
		}
	}
	nan32, inf64 := float32(math.NaN()), math.Inf(-1)
	for _, bad := range []Tensor{fp32(nan32), fp64(inf64), fp16(0x7c00), fp16(0x7e00)} {
		if allFinite([]Tensor{digitsImage(), bad}) {
			t.Errorf("%s %v counted as finite", bad.Datatype, bad.Data)
		}
	}
}
