package main

import (
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// PredictionCache is GET/SET of encoded predictions in Redis with millisecond timeouts. A failure
// never fails a request: the cache is skipped for a while, then tried again, so caching resumes
// by itself when Redis is back (gateway/cache.py behaves the same).
type PredictionCache struct {
	pool          atomic.Pointer[redis.Pool]
	newPool       func() *redis.Pool
	maxValueBytes int
	retryAfter    time.Duration
	skipUntil     atomic.Int64 // unix nanoseconds
}

func newPredictionCache(c Config) *PredictionCache {
	timeout := millis(c.RedisTimeout)
	cache := &PredictionCache{
		newPool: func() *redis.Pool {
			return &redis.Pool{
				MaxIdle:     256,
				IdleTimeout: time.Minute,
				Dial: func() (redis.Conn, error) {
					return redis.DialURL(c.RedisURL, redis.DialConnectTimeout(timeout),
						redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
				},
			}
		},
		maxValueBytes: c.MaxValueBytes,
		retryAfter:    seconds(c.RedisRetry),
	}
	cache.pool.Store(cache.newPool())
	return cache
}

func (c *PredictionCache) available() bool {
	if time.Now().UnixNano() >= c.skipUntil.Load() {
		return true
	}
	cacheErrors.WithLabelValues("skipped").Inc()
	return false
}

// Get returns the stored value, or nil on a miss, an error or while the cache is skipped.
func (c *PredictionCache) Get(key string) []byte {
	if !c.available() {
		return nil
	}
	started := time.Now()
	defer func() { cacheLookupDuration.Observe(time.Since(started).Seconds()) }()
	conn := c.pool.Load().Get()
	defer conn.Close()
	value, err := redis.Bytes(conn.Do("GET", key))
	if err == redis.ErrNil {
		return nil
	}
	if err != nil {
		c.failed("get")
		return nil
	}
	return value
}

// Fits says whether a value of this many bytes may be stored.
func (c *PredictionCache) Fits(size int) bool { return size <= c.maxValueBytes }

// Put stores a value for ttl seconds unless it is too large or the cache is skipped.
func (c *PredictionCache) Put(key string, value []byte, ttl int) {
	if ttl <= 0 || !c.Fits(len(value)) || !c.available() {
		return
	}
	conn := c.pool.Load().Get()
	defer conn.Close()
	if _, err := conn.Do("SET", key, value, "EX", ttl); err != nil {
		c.failed("set")
	}
}

// failed skips the cache for retryAfter and drops every pooled connection: after Redis restarts,
// each idle one would fail once more and restart the skip (connections in use close on return).
func (c *PredictionCache) failed(op string) {
	cacheErrors.WithLabelValues(op).Inc()
	redisErrors.Inc()
	c.skipUntil.Store(time.Now().Add(c.retryAfter).UnixNano())
	c.pool.Swap(c.newPool()).Close()
}
