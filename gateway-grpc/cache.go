package main

import (
	"log"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

const (
	// storeDelay: stores are written behind, a moment after the answer, all that queued meanwhile
	// in one pipeline. A SET sent at once lands between a client's next request and its GET (on
	// two cores, misses one after another: 0.61 -> 0.40 ms overhead per miss with the delay).
	storeDelay = time.Millisecond
	storeBatch = 128
	storeQueue = 4096
)

// PredictionCache is GET/SET of encoded predictions in Redis with millisecond timeouts. A failure
// never fails a request, whatever it is (an error, or a panic inside the Redis client): the cache
// is skipped for a while, then tried again, so caching resumes by itself when Redis is back
// (gateway/cache.py behaves the same).
type PredictionCache struct {
	pool          atomic.Pointer[redis.Pool]
	newPool       func() *redis.Pool
	stores        chan store
	maxValueBytes int
	retryAfter    time.Duration
	skipUntil     atomic.Int64 // unix nanoseconds
}

type store struct {
	key   string
	value []byte
	ttl   int
	done  chan struct{}
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
		stores:        make(chan store, storeQueue),
		maxValueBytes: c.MaxValueBytes,
		retryAfter:    seconds(c.RedisRetry),
	}
	cache.pool.Store(cache.newPool())
	go cache.writeBehind()
	return cache
}

func (c *PredictionCache) available() bool {
	if time.Now().UnixNano() >= c.skipUntil.Load() {
		return true
	}
	cacheErrors.WithLabelValues("skipped").Inc()
	return false
}

// Get returns the stored value, or nil on a miss, an error, a panic of the client or while the
// cache is skipped.
func (c *PredictionCache) Get(key string) (value []byte) {
	if !c.available() {
		return nil
	}
	started := time.Now()
	defer func() { cacheLookupDuration.Observe(time.Since(started).Seconds()) }()
	defer c.survive("get", func() { value = nil })
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

// GetMany returns the stored values of keys in one round trip (MGET), nil for each absent one;
// all nil on an error, a panic of the client or while the cache is skipped.
func (c *PredictionCache) GetMany(keys []string) (values [][]byte) {
	if !c.available() {
		return make([][]byte, len(keys))
	}
	started := time.Now()
	defer func() { cacheLookupDuration.Observe(time.Since(started).Seconds()) }()
	defer c.survive("get", func() { values = make([][]byte, len(keys)) })
	conn := c.pool.Load().Get()
	defer conn.Close()
	args := make([]interface{}, len(keys))
	for i, key := range keys {
		args[i] = key
	}
	values, err := redis.ByteSlices(conn.Do("MGET", args...))
	if err != nil || len(values) != len(keys) {
		c.failed("get")
		return make([][]byte, len(keys))
	}
	return values
}

// Fits says whether a value of this many bytes may be stored.
func (c *PredictionCache) Fits(size int) bool { return size <= c.maxValueBytes }

// Store queues a value to be stored for ttl seconds (unless too large, or the cache is skipped
// when it is written); the channel closes once it is written, refused or dropped.
func (c *PredictionCache) Store(key string, value []byte, ttl int) <-chan struct{} {
	done := make(chan struct{})
	if ttl <= 0 || !c.Fits(len(value)) {
		close(done)
		return done
	}
	select {
	case c.stores <- store{key, value, ttl, done}:
	default: // Redis cannot keep up: this answer goes uncached
		cacheErrors.WithLabelValues("dropped").Inc()
		close(done)
	}
	return done
}

// writeBehind sends the queued stores storeDelay after the first of them arrives, in pipelines.
func (c *PredictionCache) writeBehind() {
	for first := range c.stores {
		time.Sleep(storeDelay)
		batch := []store{first}
	collect:
		for len(batch) < storeBatch {
			select {
			case next := <-c.stores:
				batch = append(batch, next)
			default:
				break collect
			}
		}
		c.write(batch)
		for _, s := range batch {
			close(s.done)
		}
	}
}

func (c *PredictionCache) write(batch []store) {
	if !c.available() {
		return
	}
	defer c.survive("set", func() {})
	conn := c.pool.Load().Get()
	defer conn.Close()
	for _, s := range batch {
		conn.Send("SET", s.key, s.value, "EX", s.ttl)
	}
	err := conn.Flush()
	for i := 0; err == nil && i < len(batch); i++ {
		_, err = conn.Receive()
	}
	if err != nil {
		c.failed("set")
	}
}

// Ping says whether Redis answers PING (readiness reports it).
func (c *PredictionCache) Ping() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	conn := c.pool.Load().Get()
	defer conn.Close()
	reply, err := redis.String(conn.Do("PING"))
	return err == nil && reply == "PONG"
}

// survive turns a panic of the Redis client into a failed operation (deferred by Get and write):
// a request never fails because of the cache, and the write-behind goroutine never dies.
func (c *PredictionCache) survive(op string, after func()) {
	if recovered := recover(); recovered != nil {
		log.Printf("gateway-grpc: redis client panicked in %s: %v", op, recovered)
		c.failed(op)
		after()
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
