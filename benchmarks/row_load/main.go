// Command row-load drives a text model through gateway-grpc with batched requests of which a set
// share of rows (sentences) was seen before: closed loop, `concurrency` callers, for `duration`.
// Seen sentences come from a fixed pool (sentence i is the same in every run); the others are new
// to this run (a run nonce and a counter). With -warm it sends the whole pool once, in batches,
// and exits. Built with gateway-grpc (gateway-grpc/build.sh); run by benchmarks/row_cache.py.
// Prints JSON: requests, rows, errors, req/s, rows/s, p50/p99 ms, x-cache counts, rows from cache.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

var words = strings.Fields("the model serves batched requests while a cache keeps answers for rows " +
	"seen before and each sentence becomes one row of the batch so documents indexed again pay " +
	"only for text that changed since the last time it was embedded by the encoder")

type options struct {
	target, model, input     string
	batch, pool, concurrency int
	seen                     float64
	duration                 time.Duration
	warm                     bool
}

func main() {
	var o options
	flag.StringVar(&o.target, "target", "127.0.0.1:8081", "gateway-grpc host:port")
	flag.StringVar(&o.model, "model", "minilm_text", "text model (BYTES input [batch, 1])")
	flag.StringVar(&o.input, "input", "text", "input name")
	flag.IntVar(&o.batch, "batch", 32, "sentences per request")
	flag.IntVar(&o.pool, "pool", 512, "sentences seen before (sent by -warm)")
	flag.IntVar(&o.concurrency, "concurrency", 4, "callers in the closed loop")
	flag.Float64Var(&o.seen, "seen", 0.5, "share of each request's rows drawn from the pool")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measuring time")
	flag.BoolVar(&o.warm, "warm", false, "send the pool once and exit")
	flag.Parse()
	conn, err := grpc.Dial(o.target, grpc.WithInsecure())
	if err == nil {
		defer conn.Close()
		if o.warm {
			err = warm(conn, o)
		} else {
			err = load(conn, o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// sentence is pool sentence i, the same in every run: 8 to 15 words.
func sentence(i int) string {
	r := rand.New(rand.NewSource(int64(i)))
	picked := make([]string, 8+r.Intn(8))
	for j := range picked {
		picked[j] = words[r.Intn(len(words))]
	}
	return strings.Join(picked, " ") + " " + strconv.Itoa(i)
}

func request(model, input string, texts []string) *kserve.ModelInferRequest {
	raw := []byte{}
	for _, text := range texts {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(len(text)))
		raw = append(raw, text...)
	}
	return &kserve.ModelInferRequest{
		ModelName: model,
		Inputs: []*kserve.ModelInferRequest_InferInputTensor{
			{Name: input, Datatype: "BYTES", Shape: []int64{int64(len(texts)), 1}},
		},
		RawInputContents: [][]byte{raw},
	}
}

func call(conn *grpc.ClientConn, in *kserve.ModelInferRequest) (metadata.MD, error) {
	var trailer metadata.MD
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	err := conn.Invoke(ctx, "/inference.GRPCInferenceService/ModelInfer", in,
		&kserve.ModelInferResponse{}, grpc.Trailer(&trailer))
	return trailer, err
}

func warm(conn *grpc.ClientConn, o options) error {
	for start := 0; start < o.pool; start += o.batch {
		texts := []string{}
		for i := start; i < start+o.batch && i < o.pool; i++ {
			texts = append(texts, sentence(i))
		}
		if _, err := call(conn, request(o.model, o.input, texts)); err != nil {
			return err
		}
	}
	return nil
}

type tally struct {
	mu        sync.Mutex
	latencies []float64
	errors    int
	states    map[string]int
	hitRows   int
}

func load(conn *grpc.ClientConn, o options) error {
	nonce := time.Now().UnixNano()
	seenRows := int(o.seen*float64(o.batch) + 0.5)
	t := &tally{states: map[string]int{}}
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(nonce + int64(w)))
			for n := 0; time.Now().Before(deadline); n++ {
				texts := make([]string, o.batch)
				for i := range texts {
					if i < seenRows {
						texts[i] = sentence(r.Intn(o.pool))
					} else {
						texts[i] = fmt.Sprintf("%s, new in run %d caller %d request %d row %d", sentence(o.pool+i), nonce, w, n, i)
					}
				}
				r.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
				started := time.Now()
				trailer, err := call(conn, request(o.model, o.input, texts))
				t.record(time.Since(started), trailer, err)
			}
		}(w)
	}
	wg.Wait()
	return report(t, o)
}

func (t *tally) record(took time.Duration, trailer metadata.MD, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errors++
		return
	}
	t.latencies = append(t.latencies, took.Seconds()*1000)
	if states := trailer.Get("x-cache"); len(states) > 0 {
		t.states[states[0]]++
	}
	if rows := trailer.Get("x-cache-hit-rows"); len(rows) > 0 {
		n, _ := strconv.Atoi(rows[0])
		t.hitRows += n
	}
}

func report(t *tally, o options) error {
	sort.Float64s(t.latencies)
	quantile := func(q float64) float64 {
		if len(t.latencies) == 0 {
			return 0
		}
		return t.latencies[int(q*float64(len(t.latencies)-1))]
	}
	seconds := o.duration.Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"requests": len(t.latencies), "rows": len(t.latencies) * o.batch, "errors": t.errors,
		"requests_per_s": float64(len(t.latencies)) / seconds,
		"rows_per_s":     float64(len(t.latencies)*o.batch) / seconds,
		"p50_ms":         quantile(0.50), "p99_ms": quantile(0.99),
		"x_cache": t.states, "rows_from_cache": t.hitRows,
	})
}
