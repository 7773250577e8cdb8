package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestConcurrentIdenticalCallsMakeOneCallAndShareItsResult(t *testing.T) {
	c := newCoalescer[[]Tensor]()
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func() ([]Tensor, error) {
		calls.Add(1)
		<-release
		return []Tensor{{Name: "logits"}}, nil
	}
	var wg sync.WaitGroup
	var joined atomic.Int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, coalesced, err := c.Run(context.Background(), "k", fn, nil)
			if err != nil || out[0].Name != "logits" {
				t.Errorf("got %v, %v", out, err)
			}
			if coalesced {
				joined.Add(1)
			}
		}()
	}
	for c.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 || joined.Load() != 15 {
		t.Errorf("%d calls, %d joined", calls.Load(), joined.Load())
	}
}

func TestEveryWaiterGetsTheSameError(t *testing.T) {
	c := newCoalescer[[]Tensor]()
	failure := errors.New("triton unavailable")
	release := make(chan struct{})
	fn := func() ([]Tensor, error) { <-release; return nil, failure }
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { _, _, err := c.Run(context.Background(), "k", fn, nil); errs <- err }()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	for i := 0; i < 4; i++ {
		if err := <-errs; err != failure {
			t.Errorf("got %v", err)
		}
	}
}

func TestAWaiterThatGoesAwayCancelsNothingForTheOthers(t *testing.T) {
	c := newCoalescer[[]Tensor]()
	release := make(chan struct{})
	fn := func() ([]Tensor, error) { <-release; return []Tensor{{Name: "ok"}}, nil }
	first := make(chan []Tensor, 1)
	go func() { out, _, _ := c.Run(context.Background(), "k", fn, nil); first <- out }()
	for c.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	gone, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { _, _, err := c.Run(gone, "k", fn, nil); left <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-left; status.Code(err) != codes.Canceled {
		t.Fatalf("the waiter that left got %v", err)
	}
	close(release)
	if out := <-first; len(out) != 1 || out[0].Name != "ok" {
		t.Errorf("the remaining caller got %v", out)
	}
}

func TestNewcomersJoinTheFinishedCallUntilItsResultIsStored(t *testing.T) {
	c := newCoalescer[[]Tensor]()
	var calls atomic.Int32
	storing := make(chan struct{})
	stored := make(chan struct{})
	fn := func() ([]Tensor, error) { calls.Add(1); return []Tensor{{Name: "ok"}}, nil }
	hold := func([]Tensor) func() { return func() { close(storing); <-stored } }
	if _, _, err := c.Run(context.Background(), "k", fn, hold); err != nil {
		t.Fatal(err)
	}
	<-storing
	if _, coalesced, _ := c.Run(context.Background(), "k", fn, hold); !coalesced || calls.Load() != 1 {
		t.Errorf("a newcomer during the store made call %d (coalesced %v)", calls.Load(), coalesced)
	}
	close(stored)
}

func TestAPanickingCallFailsItsWaitersAndReleasesTheKey(t *testing.T) {
	c := newCoalescer[[]Tensor]()
	release := make(chan struct{})
	fn := func() ([]Tensor, error) { <-release; panic("bug") }
	waiter := make(chan error, 1)
	go func() {
		defer func() { recover() }()
		c.Run(context.Background(), "k", fn, nil)
	}()
	for c.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, _, err := c.Run(context.Background(), "k", fn, nil); waiter <- err }()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-waiter; status.Code(err) != codes.Internal {
		t.Errorf("the waiter got %v", err)
	}
	for deadline := time.Now().Add(time.Second); c.Len() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if c.Len() != 0 {
		t.Error("the key stayed held")
	}
}

func TestIdenticalRequestsShareOneCacheLookupAndOneInference(t *testing.T) {
	c := newCoalescer[answer]()
	var mu sync.Mutex
	stored := map[string][]Tensor{}
	var lookups, inferences atomic.Int32
	get := func() []Tensor {
		lookups.Add(1)
		mu.Lock()
		defer mu.Unlock()
		return stored["k"]
	}
	answered := make(chan struct{})
	infer := func() ([]Tensor, error) {
		inferences.Add(1)
		<-answered
		return []Tensor{{Name: "logits"}}, nil
	}
	writable := make(chan struct{})
	store := func(outputs []Tensor) { <-writable; mu.Lock(); stored["k"] = outputs; mu.Unlock() }
	first := make(chan answer, 1)
	go func() { found, _, _ := lookupOnce(context.Background(), c, "k", get, infer, store); first <- found }()
	for inferences.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan bool, 1)
	go func() { _, joined, _ := lookupOnce(context.Background(), c, "k", get, infer, store); second <- joined }()
	close(answered)
	if found := <-first; found.hit || found.outputs[0].Name != "logits" {
		t.Errorf("the first request got %+v", found)
	}
	if !<-second || lookups.Load() != 1 { // the key is held until the store is written
		t.Errorf("the second request made its own lookup: %d lookups", lookups.Load())
	}
	close(writable)
	for deadline := time.Now().Add(time.Second); c.Len() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if found, joined, _ := lookupOnce(context.Background(), c, "k", get, infer, store); !found.hit || joined {
		t.Errorf("a later request got %+v (joined %v)", found, joined)
	}
	if inferences.Load() != 1 || c.Len() != 0 {
		t.Errorf("%d inferences, %d keys held after a hit", inferences.Load(), c.Len())
	}
}

func TestARowClaimedByOneRequestIsJoinedByTheNextUntilReleased(t *testing.T) {
	r := newRowFlights[int]()
	first, claimed := r.Claim("", []string{"a", "b"})
	second, claimedAgain := r.Claim("", []string{"b", "c"})
	if len(claimed) != 2 || len(claimedAgain) != 1 || claimedAgain[0] != "c" || second["b"] != first["b"] {
		t.Fatalf("claimed %v then %v", claimed, claimedAgain)
	}
	go r.Settle(first["b"], 7, nil)
	if got, err := r.Wait(context.Background(), second["b"]); got != 7 || err != nil {
		t.Fatalf("the joined row answered %v, %v", got, err)
	}
	r.Release("", claimed, first)
	if _, again := r.Claim("", []string{"b"}); len(again) != 1 || r.Len() != 2 {
		t.Fatalf("a released row is claimed anew: %v, %d in flight", again, r.Len())
	}
}

func TestAWaiterThatGoesAwayStopsWaitingForARow(t *testing.T) {
	r := newRowFlights[int]()
	flights, _ := r.Claim("", []string{"a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Wait(ctx, flights["a"]); status.Code(err) != codes.Canceled {
		t.Fatalf("got %v", err)
	}
}

func TestARowIsJoinedOnlyWithinItsParameterGroup(t *testing.T) {
	r := newRowFlights[int]()
	plain, claimed := r.Claim("", []string{"a"})
	hurried, claimedHurried := r.Claim("timeout=1", []string{"a"})
	if len(claimed) != 1 || len(claimedHurried) != 1 || plain["a"] == hurried["a"] || r.Len() != 2 {
		t.Fatalf("a request with another timeout joined a row: %v %v", claimed, claimedHurried)
	}
	r.Release("timeout=1", claimedHurried, hurried)
	if r.Len() != 1 {
		t.Fatalf("%d rows in flight after releasing one group", r.Len())
	}
}

func TestAFlightGroupNamesTheParametersInOrder(t *testing.T) {
	timeout := &kserve.InferParameter{ParameterChoice: &kserve.InferParameter_Int64Param{Int64Param: 5}}
	priority := &kserve.InferParameter{ParameterChoice: &kserve.InferParameter_Uint64Param{Uint64Param: 1}}
	got := flightGroup(map[string]*kserve.InferParameter{"timeout": timeout, "priority": priority})
	if flightGroup(nil) != "" || got != "priority=1;timeout=5" {
		t.Fatalf("flight group %q", got)
	}
	plain, hurried := flightKey("k", nil), flightKey("k", map[string]*kserve.InferParameter{"timeout": timeout})
	if plain != "k" || hurried != "k|timeout=5" {
		t.Fatalf("flight keys %q and %q", plain, hurried)
	}
}
