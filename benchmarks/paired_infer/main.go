// Command paired-infer measures what a gRPC front adds to Triton's latency: closed-loop ModelInfer
// calls with fresh random inputs (every call a cache miss) that go to each target in turn, a short
// block of calls each, so that a drift of the machine lands on every target alike while what a
// target does after its answers (gateway-grpc writes the cache behind) stays within its own block.
// Built with gateway-grpc (gateway-grpc/build.sh); run by benchmarks/gateway.py. Prints JSON: each
// target's p50, and the median over rounds of (the target's block median - the first target's
// block median in the same round).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc"
)

func main() {
	targets := flag.String("targets", "", "comma-separated host:port; the first is the baseline")
	calls := flag.Int("calls", 1000, "calls per target")
	block := flag.Int("block", 20, "calls to one target before the next one's turn")
	warmup := flag.Int("warmup", 50, "calls per target before measuring")
	model := flag.String("model", "digits", "model name")
	input := flag.String("input", "image", "FP32 input name")
	shape := flag.String("shape", "1,1,8,8", "input shape, batch first")
	flag.Parse()
	rand.Seed(time.Now().UnixNano())
	if err := run(strings.Split(*targets, ","), *calls, *block, *warmup, *model, *input, *shape); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(addrs []string, calls, block, warmup int, model, input, shapeText string) error {
	shape, count := []int64{}, 1
	for _, field := range strings.Split(shapeText, ",") {
		dim, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || dim <= 0 {
			return fmt.Errorf("bad shape %q", shapeText)
		}
		shape, count = append(shape, int64(dim)), count*dim
	}
	conns := make([]*grpc.ClientConn, len(addrs))
	for i, addr := range addrs {
		conn, err := grpc.Dial(addr, grpc.WithInsecure())
		if err != nil {
			return err
		}
		defer conn.Close()
		conns[i] = conn
	}
	call := func(i int) (float64, error) {
		raw := make([]byte, 4*count)
		for j := 0; j < count; j++ {
			binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(rand.Float32()*16))
		}
		request := &kserve.ModelInferRequest{ModelName: model, RawInputContents: [][]byte{raw},
			Inputs: []*kserve.ModelInferRequest_InferInputTensor{{Name: input, Datatype: "FP32", Shape: shape}}}
		started := time.Now()
		err := conns[i].Invoke(context.Background(), "/inference.GRPCInferenceService/ModelInfer",
			request, &kserve.ModelInferResponse{})
		if err != nil {
			return 0, fmt.Errorf("%s: %v", addrs[i], err)
		}
		return float64(time.Since(started).Nanoseconds()) / 1e6, nil
	}
	for w := 0; w < warmup; w++ {
		for i := range addrs {
			if _, err := call(i); err != nil {
				return err
			}
		}
	}
	latencies := make([][]float64, len(addrs))
	differences := make([][]float64, len(addrs))
	for round := 0; round*block < calls; round++ {
		medians := make([]float64, len(addrs))
		for k := range addrs {
			i := (k + round) % len(addrs) // no target always goes first
			blockLatencies := make([]float64, block)
			for b := range blockLatencies {
				ms, err := call(i)
				if err != nil {
					return err
				}
				blockLatencies[b] = ms
			}
			latencies[i] = append(latencies[i], blockLatencies...)
			medians[i] = median(blockLatencies)
		}
		for i := range addrs {
			differences[i] = append(differences[i], medians[i]-medians[0])
		}
	}
	result := struct {
		Targets          []string  `json:"targets"`
		P50Ms            []float64 `json:"p50_ms"`
		PairedOverheadMs []float64 `json:"paired_overhead_p50_ms"`
		CallsPerTarget   int       `json:"calls_per_target"`
	}{Targets: addrs, CallsPerTarget: len(latencies[0])}
	for i := range addrs {
		result.P50Ms = append(result.P50Ms, median(latencies[i]))
		result.PairedOverheadMs = append(result.PairedOverheadMs, median(differences[i]))
	}
	return json.NewEncoder(os.Stdout).Encode(result)
}

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	return (sorted[(n-1)/2] + sorted[n/2]) / 2
}
