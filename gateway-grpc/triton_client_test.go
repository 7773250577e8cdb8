package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Calls that find a model's info missing (or expired) together make one metadata fetch, whose
// info they all get, as gateway/triton_client.py's model_info does.
func TestCallsThatNeedAModelsInfoTogetherShareOneFetch(t *testing.T) {
	corpus := readCorpus(t)
	triton := newStandIn(t, corpus.Models)
	triton.metadataGate = make(chan struct{})
	server := grpc.NewServer()
	server.RegisterService(triton.serviceDesc(), triton)
	config := defaultConfig()
	config.TritonURLs, config.ModelInfoTTL = []string{serveOnFreePort(t, server)}, 3600
	pool := newTritonPool(config)
	const model = "digits" // a model of the corpus whose info is valid
	var started, done sync.WaitGroup
	infos := make([]*ModelInfo, 32)
	for i := range infos {
		started.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			started.Done()
			info, err := pool.ModelInfo(context.Background(), model, "")
			if err != nil {
				t.Error(err)
			}
			infos[i] = info
		}(i)
	}
	started.Wait()
	for deadline := time.Now().Add(10 * time.Second); triton.metadataCalls.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no metadata call reached the stand-in")
		}
		time.Sleep(time.Millisecond)
	}
	close(triton.metadataGate)
	done.Wait()
	if calls := triton.metadataCalls.Load(); calls != 1 {
		t.Fatalf("%d metadata calls for 32 callers, want 1", calls)
	}
	for _, info := range infos {
		if info != infos[0] {
			t.Fatal("the callers did not all get the one fetched info")
		}
	}
}

// While Triton does not answer in time, the last known info stays in use (cached answers keep
// being served), as while it is unreachable.
func TestAnExpiredInfoStaysInUseWhileTritonIsHung(t *testing.T) {
	corpus := readCorpus(t)
	triton := newStandIn(t, corpus.Models)
	server := grpc.NewServer()
	server.RegisterService(triton.serviceDesc(), triton)
	config := defaultConfig()
	config.TritonURLs, config.ModelInfoTTL, config.TritonTimeout = []string{serveOnFreePort(t, server)}, 0, 200
	pool := newTritonPool(config)
	const model = "digits" // a model of the corpus whose info is valid
	known, err := pool.ModelInfo(context.Background(), model, "")
	if err != nil {
		t.Fatal(err)
	}
	triton.metadataGate = make(chan struct{}) // from now on Triton hangs on metadata
	defer close(triton.metadataGate)
	info, err := pool.ModelInfo(context.Background(), model, "")
	if err != nil || info != known {
		t.Fatalf("got %v, %v; want the known info", info, err)
	}
}

func shuttingDownPool(t *testing.T) (*TritonPool, *standIn) {
	triton := newStandIn(t, readCorpus(t).Models)
	server := grpc.NewServer()
	server.RegisterService(triton.serviceDesc(), triton)
	config := defaultConfig()
	config.TritonURLs, config.ModelInfoTTL = []string{serveOnFreePort(t, server)}, 0
	return newTritonPool(config), triton
}

// While Triton shuts down (every model "has no available versions", ServerReady "Server
// exiting") the last known info stays in use, so cached answers keep being served.
func TestAnExpiredInfoStaysInUseWhileTritonShutsDown(t *testing.T) {
	pool, triton := shuttingDownPool(t)
	known, err := pool.ModelInfo(context.Background(), "digits", "")
	if err != nil {
		t.Fatal(err)
	}
	triton.exiting.Store(true)
	info, err := pool.ModelInfo(context.Background(), "digits", "")
	if err != nil || info != known {
		t.Fatalf("got %v, %v; want the known info", info, err)
	}
}

// A model Triton cannot find while it shuts down is UNAVAILABLE (503, retry), not NOT_FOUND.
func TestAModelTritonCannotFindWhileShuttingDownIsUnavailable(t *testing.T) {
	pool, triton := shuttingDownPool(t)
	triton.exiting.Store(true)
	_, err := pool.ModelInfo(context.Background(), "digits", "")
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "Triton is not ready") {
		t.Fatalf("got %v, want UNAVAILABLE naming Triton not ready", err)
	}
}
