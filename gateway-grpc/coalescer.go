package main

import (
	"context"
	"sync"
)

// Coalescer makes one call per key for concurrent identical requests; every waiter gets that
// call's result or that same error (gateway/coalescer.py is the Python twin).
type Coalescer struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{}
	outputs []Tensor
	err     error
}

func newCoalescer() *Coalescer { return &Coalescer{calls: map[string]*call{}} }

// Run returns the result of fn for key, started by the first caller and shared with the others;
// coalesced is true for a caller that did not start it. fn runs detached from any caller, so a
// caller that goes away cancels nothing for the rest. After a success, hold (when given) runs
// before the key is released: newcomers keep joining the finished call until the result is stored.
func (c *Coalescer) Run(ctx context.Context, key string, fn func() ([]Tensor, error),
	hold func([]Tensor)) (outputs []Tensor, coalesced bool, err error) {
	c.mu.Lock()
	running, coalesced := c.calls[key]
	if !coalesced {
		running = &call{done: make(chan struct{})}
		c.calls[key] = running
		go c.execute(key, running, fn, hold)
	}
	c.mu.Unlock()
	select {
	case <-running.done:
		return running.outputs, coalesced, running.err
	case <-ctx.Done():
		return nil, coalesced, ctx.Err()
	}
}

func (c *Coalescer) execute(key string, running *call, fn func() ([]Tensor, error), hold func([]Tensor)) {
	running.outputs, running.err = fn()
	close(running.done)
	if running.err == nil && hold != nil {
		hold(running.outputs)
	}
	c.mu.Lock()
	delete(c.calls, key)
	c.mu.Unlock()
}

// Len is the number of keys in flight or held.
func (c *Coalescer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}
