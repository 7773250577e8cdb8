package main

// gateway-grpc answers every gRPC request of the conformance corpus (tests/conformance/corpus.json,
// written from tests/conformance/cases.py) as it says: code, message, the key and value stored,
// what reaches Triton, what is counted; and reads its settings as the corpus says. The Python
// gateway is held to the same file by tests/conformance/test_gateway.py.
//
// gateway-grpc's own code runs unchanged (gRPC server, Triton client, coalescer, codec, cache
// client); Triton is a stand-in serving the corpus's models and answers (as
// tests/conformance/triton_standin.py), and Redis a map behind the Redis client's connection.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatewaygrpc/kserve"
	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

const corpusPath = "../tests/conformance/corpus.json"

type corpusFile struct {
	Models   map[string]corpusModel `json:"models"`
	Requests []corpusCase           `json:"requests"`
	Settings []settingsCase         `json:"settings"`
}

type corpusModel struct {
	Metadata json.RawMessage `json:"metadata"`
	Config   json.RawMessage `json:"config"`
}

type corpusCase struct {
	Name      string          `json:"name"`
	Model     string          `json:"model"`
	Triton    json.RawMessage `json:"triton"`
	Requests  []wireRequest   `json:"requests"`
	Key       *string         `json:"key"`
	Value     *string         `json:"value"`
	Forwarded json.RawMessage `json:"forwarded_parameters"`
	Rejection string          `json:"queue_rejection"`
	Bypassed  string          `json:"cache_bypassed"`
	// per-row cached models: Redis before and after, and the raw inputs Triton receives
	Seeded       map[string]string `json:"seeded"`
	Rows         map[string]string `json:"rows"`
	TritonInputs map[string]string `json:"triton_inputs"`
}

type wireRequest struct {
	Form          string          `json:"form"`
	Request       json.RawMessage `json:"request"`
	MessageBase64 string          `json:"message_base64"`
	Expect        struct {
		Code     string            `json:"code"`
		Message  string            `json:"message"`
		Trailers map[string]string `json:"trailers"`
	} `json:"expect"`
}

type settingsCase struct {
	Name     string                 `json:"name"`
	Env      map[string]string      `json:"env"`
	Settings map[string]interface{} `json:"settings"`
	Error    string                 `json:"error"`
}

func readCorpus(t *testing.T) corpusFile {
	t.Helper()
	data, err := os.ReadFile(corpusPath)
	if err != nil {
		t.Fatalf("the corpus is missing (python -m tests.conformance.corpus writes it): %v", err)
	}
	var corpus corpusFile
	if err := json.Unmarshal(data, &corpus); err != nil {
		t.Fatal(err)
	}
	return corpus
}

// standIn is Triton's gRPC service for the corpus: each model's metadata and config (version "" or
// "1", else Triton's NOT_FOUND), ModelInfer answered with the current case's answer or error;
// once exiting, what Triton 2.51 answers during its graceful shutdown (measured).
// metadataCalls counts ModelMetadata calls; a non-nil metadataGate holds each until it is closed.
type standIn struct {
	metadata      map[string]*kserve.ModelMetadataResponse
	configs       map[string]*kserve.ModelConfig
	mu            sync.Mutex
	triton        json.RawMessage
	received      []*kserve.ModelInferRequest
	metadataCalls atomic.Int32
	metadataGate  chan struct{}
	exiting       atomic.Bool // Triton 2.51 in its graceful shutdown (triton_client_test.go)
}

func newStandIn(t *testing.T, models map[string]corpusModel) *standIn {
	s := &standIn{metadata: map[string]*kserve.ModelMetadataResponse{}, configs: map[string]*kserve.ModelConfig{}}
	for name, model := range models {
		s.metadata[name], s.configs[name] = &kserve.ModelMetadataResponse{}, &kserve.ModelConfig{}
		if protojson.Unmarshal(model.Metadata, s.metadata[name]) != nil || protojson.Unmarshal(model.Config, s.configs[name]) != nil {
			t.Fatalf("model %s: its metadata or config is no protobuf JSON", name)
		}
	}
	return s
}

func (s *standIn) answerWith(triton json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triton, s.received = triton, nil
}

func (s *standIn) receivedRequests() []*kserve.ModelInferRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*kserve.ModelInferRequest(nil), s.received...)
}

// served is the model Triton serves for a name: its C API cuts the name at a NUL (measured on
// tritonserver 2.51), as triton_standin.py's served does.
func served(name string) string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		return name[:i]
	}
	return name
}

func (s *standIn) known(name, version string) error {
	if s.exiting.Load() {
		return status.Error(codes.NotFound, "Request for unknown model: '"+name+"' has no available versions")
	}
	if _, ok := s.metadata[served(name)]; ok && (version == "" || version == "1") {
		return nil
	}
	shown := "'" + name + "'"
	if version != "" && version != "1" {
		shown += " version " + version
	}
	return status.Error(codes.NotFound, "Request for unknown model: "+shown+" is not found")
}

func (s *standIn) infer(request *kserve.ModelInferRequest) (*kserve.ModelInferResponse, error) {
	s.mu.Lock()
	s.received = append(s.received, request)
	triton := s.triton
	s.mu.Unlock()
	var answer struct {
		Answer json.RawMessage `json:"answer"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if len(triton) == 0 || string(triton) == "null" {
		return nil, status.Error(codes.Internal, "the corpus says Triton is not reached")
	}
	if err := json.Unmarshal(triton, &answer); err != nil {
		return nil, err
	}
	if answer.Error != nil {
		return nil, status.Error(codeOf(answer.Error.Code), answer.Error.Message)
	}
	response := &kserve.ModelInferResponse{}
	return response, protojson.Unmarshal(answer.Answer, response)
}

// codeOf is the code Python's grpc names `name` (codeName's inverse).
func codeOf(name string) codes.Code {
	for code := codes.OK; code <= codes.Unauthenticated; code++ {
		if codeName(code) == name {
			return code
		}
	}
	return codes.Unknown
}

func (s *standIn) serviceDesc() *grpc.ServiceDesc {
	unary := func(name string, handle func(decode func(interface{}) error) (interface{}, error)) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: name, Handler: func(_ interface{}, _ context.Context,
			decode func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			return handle(decode)
		}}
	}
	return &grpc.ServiceDesc{
		ServiceName: "inference.GRPCInferenceService",
		HandlerType: (*interface{})(nil),
		Methods: []grpc.MethodDesc{
			unary("ServerReady", func(func(interface{}) error) (interface{}, error) {
				if s.exiting.Load() {
					return nil, status.Error(codes.Unavailable, "Server exiting")
				}
				return &kserve.ServerReadyResponse{Ready: true}, nil
			}),
			unary("ModelMetadata", func(decode func(interface{}) error) (interface{}, error) {
				request := &kserve.ModelMetadataRequest{}
				if err := decode(request); err != nil {
					return nil, err
				}
				s.metadataCalls.Add(1)
				if s.metadataGate != nil {
					<-s.metadataGate
				}
				return s.metadata[served(request.Name)], s.known(request.Name, request.Version)
			}),
			unary("ModelConfig", func(decode func(interface{}) error) (interface{}, error) {
				request := &kserve.ModelConfigRequest{}
				if err := decode(request); err != nil {
					return nil, err
				}
				return &kserve.ModelConfigResponse{Config: s.configs[served(request.Name)]}, s.known(request.Name, request.Version)
			}),
			unary("ModelInfer", func(decode func(interface{}) error) (interface{}, error) {
				request := &kserve.ModelInferRequest{}
				if err := decode(request); err != nil {
					return nil, err
				}
				return s.infer(request)
			}),
		},
	}
}

// memoryRedis is what the cache's Redis connections read and write: a map.
type memoryRedis struct {
	mu     sync.Mutex
	values map[string][]byte
}

type memoryConn struct {
	redis   *memoryRedis
	replies []interface{}
}

func (c *memoryConn) Close() error { return nil }
func (c *memoryConn) Err() error   { return nil }
func (c *memoryConn) Flush() error { return nil }

func (c *memoryConn) Do(command string, args ...interface{}) (interface{}, error) {
	if command == "" { // redigo's pool: receive what is pending
		c.replies = nil
		return nil, nil
	}
	if err := c.Send(command, args...); err != nil {
		return nil, err
	}
	return c.Receive()
}

func (c *memoryConn) Send(command string, args ...interface{}) error {
	c.redis.mu.Lock()
	defer c.redis.mu.Unlock()
	switch command {
	case "GET":
		value, found := c.redis.values[args[0].(string)]
		if !found {
			c.replies = append(c.replies, nil)
			return nil
		}
		c.replies = append(c.replies, value)
	case "MGET":
		values := make([]interface{}, len(args))
		for i, key := range args {
			if value, found := c.redis.values[key.(string)]; found {
				values[i] = value
			}
		}
		c.replies = append(c.replies, values)
	case "SET":
		c.redis.values[args[0].(string)] = append([]byte(nil), args[1].([]byte)...)
		c.replies = append(c.replies, "OK")
	case "PING":
		c.replies = append(c.replies, "PONG")
	}
	return nil
}

func (c *memoryConn) Receive() (interface{}, error) {
	reply := c.replies[0]
	c.replies = c.replies[1:]
	return reply, nil
}

func (r *memoryRedis) stored() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	copied := map[string][]byte{}
	for k, v := range r.values {
		copied[k] = v
	}
	return copied
}

// underTest is gateway-grpc serving on a free port in front of the stand-in and the map.
type underTest struct {
	gateway *Gateway
	triton  *standIn
	redis   *memoryRedis
	conn    *grpc.ClientConn
}

func serveOnFreePort(t *testing.T, server *grpc.Server) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

func startUnderTest(t *testing.T, corpus corpusFile) *underTest {
	triton := newStandIn(t, corpus.Models)
	tritonServer := grpc.NewServer()
	tritonServer.RegisterService(triton.serviceDesc(), triton)
	config := defaultConfig()
	config.TritonURLs = []string{serveOnFreePort(t, tritonServer)}
	config.RedisRetry, config.ModelInfoTTL = 0, 3600
	gateway := newGateway(config)
	store := &memoryRedis{values: map[string][]byte{}}
	gateway.cache.newPool = func() *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return &memoryConn{redis: store}, nil }}
	}
	gateway.cache.pool.Swap(gateway.cache.newPool()).Close()
	conn, err := grpc.Dial(serveOnFreePort(t, newServer(config, gateway)), grpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &underTest{gateway, triton, store, conn}
}

// send makes one ModelInfer call: the error, and the trailing metadata.
func (u *underTest) send(request wireRequest) (error, map[string]string) {
	var trailer metadata.MD
	var in interface{}
	if request.MessageBase64 != "" {
		data, _ := base64.StdEncoding.DecodeString(request.MessageBase64)
		in = &frame{data}
	} else {
		message := &kserve.ModelInferRequest{}
		if err := protojson.Unmarshal(request.Request, message); err != nil {
			return err, nil
		}
		in = message
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := u.conn.Invoke(ctx, methodPrefix+"ModelInfer", in, &kserve.ModelInferResponse{}, grpc.Trailer(&trailer))
	trailers := map[string]string{}
	for name, values := range trailer {
		trailers[name] = strings.Join(values, ",")
	}
	return err, trailers
}

// settled waits until no key is in flight or held for its store (the answer is stored, or not).
func (u *underTest) settled(t *testing.T) {
	for deadline := time.Now().Add(10 * time.Second); u.gateway.coalescer.Len()+u.gateway.rows.Len() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("a key stayed in flight")
		}
		time.Sleep(time.Millisecond)
	}
}

func counters(model string) []float64 {
	return []float64{
		testutil.ToFloat64(queueRejections.WithLabelValues("queue_full")),
		testutil.ToFloat64(queueRejections.WithLabelValues("queue_timeout")),
		testutil.ToFloat64(cacheBypassed.WithLabelValues(model, "no_fingerprint")),
		testutil.ToFloat64(cacheBypassed.WithLabelValues(model, "non_finite")),
	}
}

func expectedCounts(c corpusCase) []float64 {
	one := func(yes bool) float64 {
		if yes {
			return 1
		}
		return 0
	}
	return []float64{
		one(c.Rejection == "queue_full"), one(c.Rejection == "queue_timeout"),
		one(c.Bypassed == "no_fingerprint"), one(c.Bypassed == "non_finite"),
	}
}

func TestGatewayGRPCAnswersAsTheCorpusSays(t *testing.T) {
	corpus := readCorpus(t)
	u := startUnderTest(t, corpus)
	replayed := 0
	for _, c := range corpus.Requests {
		for _, request := range c.Requests {
			if request.Request == nil && request.MessageBase64 == "" {
				continue // an HTTP form
			}
			replayed++
			t.Run(c.Name+" ["+request.Form+"]", func(t *testing.T) { u.replay(t, c, request) })
		}
	}
	if replayed < 100 {
		t.Errorf("only %d gRPC requests in the corpus", replayed)
	}
}

func (u *underTest) replay(t *testing.T, c corpusCase, request wireRequest) {
	u.triton.answerWith(c.Triton)
	u.redis.mu.Lock()
	u.redis.values = decoded(c.Seeded)
	u.redis.mu.Unlock()
	before := counters(c.Model)
	err, trailers := u.send(request)
	got := status.Convert(err)
	if codeName(got.Code()) != request.Expect.Code || got.Message() != request.Expect.Message {
		t.Fatalf("answered %s %q, the corpus says %s %q", codeName(got.Code()), got.Message(), request.Expect.Code, request.Expect.Message)
	}
	if err == nil && !reflect.DeepEqual(trailers, request.Expect.Trailers) {
		t.Errorf("trailers %v on the first request, the corpus says %v", trailers, request.Expect.Trailers)
	}
	u.settled(t)
	want := decoded(c.Rows)
	if c.Key != nil {
		want[*c.Key], _ = base64.StdEncoding.DecodeString(*c.Value)
	}
	if stored := u.redis.stored(); !reflect.DeepEqual(keysOf(stored), keysOf(want)) {
		t.Errorf("stored under %v, the corpus says %v", keysOf(stored), keysOf(want))
	} else if !reflect.DeepEqual(stored, want) {
		t.Errorf("stored %q, the corpus says %q", stored, want)
	}
	u.checkTriton(t, c)
	after := counters(c.Model)
	for i, expected := range expectedCounts(c) {
		if after[i]-before[i] != expected {
			t.Errorf("metric %d moved by %v, the corpus says %v", i, after[i]-before[i], expected)
		}
	}
	if c.Key != nil || (len(c.Rows) > 0 && c.Bypassed == "") {
		calls := len(u.triton.receivedRequests())
		if err, trailers := u.send(request); err != nil || trailers["x-cache"] != "HIT" || len(u.triton.receivedRequests()) != calls {
			t.Errorf("a repeat answered %v, trailers %v", err, trailers)
		}
	}
}

func decoded(values map[string]string) map[string][]byte {
	bytes := map[string][]byte{}
	for key, value := range values {
		bytes[key], _ = base64.StdEncoding.DecodeString(value)
	}
	return bytes
}

// checkTriton: Triton was reached once when the corpus gives its answer, else never; with the
// request parameters the corpus says.
func (u *underTest) checkTriton(t *testing.T, c corpusCase) {
	received := u.triton.receivedRequests()
	reached := len(c.Triton) > 0 && string(c.Triton) != "null"
	if (len(received) == 1) != reached || len(received) > 1 {
		t.Fatalf("Triton received %d calls; the corpus says reached: %v", len(received), reached)
	}
	if !reached {
		return
	}
	if c.TritonInputs != nil {
		sent := map[string][]byte{}
		for i, input := range received[0].Inputs {
			sent[input.Name] = received[0].RawInputContents[i]
		}
		if want := decoded(c.TritonInputs); !reflect.DeepEqual(sent, want) {
			t.Errorf("Triton received rows %q, the corpus says %q", sent, want)
		}
	}
	forwarded := map[string]interface{}{}
	for key, parameter := range received[0].Parameters {
		text, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(parameter)
		var value interface{}
		json.Unmarshal(text, &value)
		forwarded[key] = value
	}
	var want map[string]interface{}
	json.Unmarshal(c.Forwarded, &want)
	if !reflect.DeepEqual(forwarded, want) {
		t.Errorf("Triton received parameters %v, the corpus says %v", forwarded, want)
	}
}

func keysOf(values map[string][]byte) []string {
	keys := []string{}
	for key := range values {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func TestGatewayGRPCReadsItsSettingsAsTheCorpusSays(t *testing.T) {
	for _, c := range readCorpus(t).Settings {
		c := c
		t.Run(c.Name, func(t *testing.T) {
			config, err := configFromEnv(func(name string) (string, bool) { v, ok := c.Env[name]; return v, ok })
			if c.Error != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.Error) {
					t.Fatalf("got %v, the corpus says %s is refused", err, c.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			text, _ := json.Marshal(config)
			var read map[string]interface{}
			json.Unmarshal(text, &read)
			for name, value := range read {
				if expected, known := c.Settings[name]; !known || !reflect.DeepEqual(value, expected) {
					t.Errorf("%s = %v, the Python gateway reads %v", name, value, expected)
				}
			}
		})
	}
}
