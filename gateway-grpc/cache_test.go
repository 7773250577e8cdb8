package main

import (
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// brokenConn is a Redis connection whose every command fails with err, or panics when err is nil.
type brokenConn struct{ err error }

func (c brokenConn) fail() error {
	if c.err == nil {
		panic("redis client bug")
	}
	return c.err
}
func (c brokenConn) Close() error                                   { return nil }
func (c brokenConn) Err() error                                     { return nil }
func (c brokenConn) Do(string, ...interface{}) (interface{}, error) { return nil, c.fail() }
func (c brokenConn) Send(string, ...interface{}) error              { return c.fail() }
func (c brokenConn) Flush() error                                   { return c.fail() }
func (c brokenConn) Receive() (interface{}, error)                  { return nil, c.fail() }
func (c brokenConn) DoWithTimeout(time.Duration, string, ...interface{}) (interface{}, error) {
	return nil, c.fail()
}

func brokenCache(err error) *PredictionCache {
	config := defaultConfig()
	config.RedisRetry = 0 // try Redis on every call
	cache := newPredictionCache(config)
	cache.newPool = func() *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return brokenConn{err}, nil }}
	}
	cache.pool.Swap(cache.newPool()).Close()
	return cache
}

func TestNoErrorOrPanicOfTheRedisClientFailsALookupOrAStore(t *testing.T) {
	for name, err := range map[string]error{
		"error": errors.New("use of closed network connection"), "panic": nil,
	} {
		cache := brokenCache(err)
		for i := 0; i < 3; i++ {
			if value := cache.Get("pred:digits:k"); value != nil {
				t.Errorf("%s: a failed GET returned %q", name, value)
			}
			select {
			case <-cache.Store("pred:digits:k", []byte("v"), 60):
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: a failed store never finished (the write-behind goroutine died?)", name)
			}
		}
		if cache.Ping() {
			t.Errorf("%s: a broken Redis answered PING", name)
		}
	}
}
