package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
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
	var model string
	for name := range corpus.Models {
		model = name
		break
	}
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
