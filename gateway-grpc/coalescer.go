package main

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Coalescer makes one call per key for concurrent identical requests; every waiter gets that
// call's result or that same error (gateway/coalescer.py is the Python twin).
type Coalescer[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done   chan struct{}
	result T
	err    error
}

func newCoalescer[T any]() *Coalescer[T] { return &Coalescer[T]{calls: map[string]*call[T]{}} }

// Run returns the result of fn for key, made by the first caller and shared with the others;
// coalesced is true for a caller that did not make it. The first caller runs fn itself (no
// hand-off to another goroutine on the miss path) and fn must not depend on that caller's context:
// a follower that goes away stops waiting, the call goes on for the rest. After a success, hold
// (when given) may return work (storing the result) that runs before the key is released, so
// newcomers keep joining the finished call until its result is stored; the first caller's answer
// does not wait for that work. Without work the key is released at once.
func (c *Coalescer[T]) Run(ctx context.Context, key string, fn func() (T, error),
	hold func(T) func()) (result T, coalesced bool, err error) {
	c.mu.Lock()
	running, coalesced := c.calls[key]
	if !coalesced {
		running = &call[T]{done: make(chan struct{})}
		c.calls[key] = running
	}
	c.mu.Unlock()
	if !coalesced {
		finished := false
		defer func() {
			if !finished { // fn panicked: fail the waiters and forget the key; the panic goes on
				running.err = status.Error(codes.Internal, "internal error")
				close(running.done)
				c.release(key, nil)
			}
		}()
		running.result, running.err = fn()
		finished = true
		close(running.done)
		var work func()
		if running.err == nil && hold != nil {
			work = hold(running.result)
		}
		if work != nil {
			go c.release(key, work)
		} else {
			c.release(key, nil)
		}
		return running.result, false, running.err
	}
	select {
	case <-running.done:
		return running.result, true, running.err
	case <-ctx.Done():
		return result, true, status.FromContextError(ctx.Err()).Err()
	}
}

func (c *Coalescer[T]) release(key string, after func()) {
	if after != nil {
		after()
	}
	c.mu.Lock()
	delete(c.calls, key)
	c.mu.Unlock()
}

// Len is the number of keys in flight or held.
func (c *Coalescer[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// RowFlights coalesces per row (gateway/coalescer.py's RowFlights): one flight per row key,
// claimed by the first request that needs it; later requests wait on it. A claimant settles its
// flights, then releases them once their results are stored, so a request arriving between an
// answer and its store joins the finished flight instead of computing the row again.
type RowFlights[T any] struct {
	mu      sync.Mutex
	flights map[string]*call[T]
}

func newRowFlights[T any]() *RowFlights[T] { return &RowFlights[T]{flights: map[string]*call[T]{}} }

// Claim returns the flight of every key, and the keys (in the order given) this caller must settle.
// Only a flight of the same group (flightGroup of the request's parameters) is joined.
func (r *RowFlights[T]) Claim(group string, keys []string) (map[string]*call[T], []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	flights, claimed := map[string]*call[T]{}, []string{}
	for _, key := range keys {
		flight, running := r.flights[group+"\x00"+key]
		if !running {
			flight = &call[T]{done: make(chan struct{})}
			r.flights[group+"\x00"+key] = flight
			claimed = append(claimed, key)
		}
		flights[key] = flight
	}
	return flights, claimed
}

// Settle gives a claimed flight its result or error and wakes its waiters.
func (r *RowFlights[T]) Settle(flight *call[T], result T, err error) {
	flight.result, flight.err = result, err
	close(flight.done)
}

// Release forgets the keys' flights claimed in group.
func (r *RowFlights[T]) Release(group string, keys []string, flights map[string]*call[T]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, key := range keys {
		if r.flights[group+"\x00"+key] == flights[key] {
			delete(r.flights, group+"\x00"+key)
		}
	}
}

// Wait returns a flight's result, or the context's error when the caller goes away first.
func (r *RowFlights[T]) Wait(ctx context.Context, flight *call[T]) (T, error) {
	select {
	case <-flight.done:
		return flight.result, flight.err
	case <-ctx.Done():
		var zero T
		return zero, status.FromContextError(ctx.Err()).Err()
	}
}

// Len is the number of row keys in flight or held.
func (r *RowFlights[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flights)
}
