// How Triton's gRPC statuses map onto the gateway's answers, as gateway/errors.py maps them.
package main

import (
	"strings"

	"gatewaygrpc/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fromTriton maps a Triton status to the gateway's answer, as gateway/errors.py's from_triton
// does for HTTP, with the markers generated from it (package shared): queue rejections ->
// RESOURCE_EXHAUSTED (429) with their metric reason, input faults ONNX Runtime reports ->
// INVALID_ARGUMENT (400), unreachable -> UNAVAILABLE (503), ...
func fromTriton(code codes.Code, message string) (error, string) {
	lowered := strings.ToLower(message)
	for _, rejection := range shared.QueueRejections {
		if strings.Contains(lowered, rejection.Marker) {
			return status.Error(codes.ResourceExhausted, rejection.Answer+": "+message), rejection.Reason
		}
	}
	if isInputFault(code, lowered) {
		return status.Error(codes.InvalidArgument, shared.InputFaultAnswer+": "+message), ""
	}
	switch code {
	case codes.ResourceExhausted:
		return status.Error(codes.ResourceExhausted, "model queue is full: "+message), ""
	case codes.InvalidArgument, codes.NotFound:
		return status.Error(code, message), ""
	case codes.DeadlineExceeded:
		return status.Error(codes.DeadlineExceeded, "inference deadline exceeded"), ""
	case codes.Unavailable, codes.Canceled, codes.Unknown:
		return status.Error(codes.Unavailable, "inference server unavailable: "+message), ""
	}
	return status.Errorf(codes.Internal, "inference server error (%s): %s", codeName(code), message), ""
}

// tritonNotReady is UNAVAILABLE (503, retry) for Triton's NOT_FOUND from a server that is not ready,
// as gateway/errors.py's triton_not_ready: during its graceful shutdown Triton 2.51 unloads every
// model and answers "has no available versions" for each, while ServerReady says "Server exiting".
func tritonNotReady(message string) error {
	return status.Error(codes.Unavailable, "inference server unavailable: "+shared.NotReady+": "+message)
}

// isInputFault: an INTERNAL or UNKNOWN error whose (lower-case) message names a fault of the input.
func isInputFault(code codes.Code, lowered string) bool {
	for _, faultCode := range shared.InputFaultCodes {
		if codeName(code) != faultCode {
			continue
		}
		for _, marker := range shared.InputFaults {
			if strings.Contains(lowered, marker) {
				return true
			}
		}
	}
	return false
}

// codeName is a status code as Python's grpc names it (UNAVAILABLE), for messages and metric labels.
func codeName(code codes.Code) string {
	if code == codes.Canceled {
		return "CANCELLED" // Python's spelling
	}
	var name strings.Builder
	for i, r := range code.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			name.WriteByte('_')
		}
		name.WriteRune(r)
	}
	return strings.ToUpper(strings.Replace(name.String(), "O_K", "OK", 1))
}
