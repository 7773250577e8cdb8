package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is read from the same GATEWAY_* variables as the Python gateway (gateway/settings.py),
// with the same defaults; a test compares the two.
type Config struct {
	Host          string         `json:"host"`
	GRPCPort      int            `json:"grpc_port"`
	MetricsPort   int            `json:"grpc_metrics_port"`
	TritonURLs    []string       `json:"triton_url"`
	RedisURL      string         `json:"redis_url"`
	CacheEnabled  bool           `json:"cache_enabled"`
	CacheTTL      int            `json:"cache_ttl_s"`
	ModelTTL      map[string]int `json:"cache_model_ttl_s"`
	MaxValueBytes int            `json:"cache_max_value_bytes"`
	RedisTimeout  int            `json:"redis_timeout_ms"`
	RedisRetry    float64        `json:"redis_retry_after_s"`
	TritonTimeout int            `json:"triton_timeout_ms"`
	ModelInfoTTL  float64        `json:"model_info_ttl_s"`
	MaxInFlight   int            `json:"max_in_flight"`
	MaxBodyBytes  int            `json:"max_body_bytes"`
	APIKeys       []string       `json:"api_keys"`
}

// decimalNumber is the syntax of a number setting in both gateways (gateway/settings.py's NUMBER).
var decimalNumber = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func defaultConfig() Config {
	return Config{
		Host: "127.0.0.1", GRPCPort: 8081, MetricsPort: 8082,
		TritonURLs: []string{"127.0.0.1:8001"}, RedisURL: "redis://127.0.0.1:6379/0",
		CacheEnabled: true, CacheTTL: 3600, ModelTTL: map[string]int{}, MaxValueBytes: 1 << 20,
		RedisTimeout: 50, RedisRetry: 1.0, TritonTimeout: 10_000, ModelInfoTTL: 1.0,
		MaxInFlight: 256, MaxBodyBytes: 8 << 20, APIKeys: []string{},
	}
}

// configFromEnv applies every GATEWAY_* variable that is set; a malformed one is an error naming it.
func configFromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := defaultConfig()
	var err error
	set := func(name string, parse func(string) error) {
		value, ok := lookup("GATEWAY_" + name)
		if !ok || err != nil {
			return
		}
		if e := parse(strings.TrimSpace(value)); e != nil {
			err = fmt.Errorf("GATEWAY_%s=%q: %v", name, value, e)
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	integer := func(p *int) func(string) error {
		return func(v string) (e error) { *p, e = strconv.Atoi(v); return }
	}
	float := func(p *float64) func(string) error {
		return func(v string) (e error) {
			if !decimalNumber.MatchString(v) { // no inf, nan, hex or underscores: what Python reads
				return fmt.Errorf("%q is not a finite decimal number", v)
			}
			*p, e = strconv.ParseFloat(v, 64)
			return
		}
	}
	list := func(p *[]string) func(string) error {
		return func(v string) error { *p = commaList(v); return nil }
	}
	set("HOST", str(&c.Host))
	set("GRPC_PORT", integer(&c.GRPCPort))
	set("GRPC_METRICS_PORT", integer(&c.MetricsPort))
	set("TRITON_URL", list(&c.TritonURLs))
	set("REDIS_URL", str(&c.RedisURL))
	set("CACHE_ENABLED", func(v string) (e error) { c.CacheEnabled, e = parseBool(v); return })
	set("CACHE_TTL_S", integer(&c.CacheTTL))
	set("CACHE_MODEL_TTL_S", func(v string) error { return parseModelTTL(v, &c.ModelTTL) })
	set("CACHE_MAX_VALUE_BYTES", integer(&c.MaxValueBytes))
	set("REDIS_TIMEOUT_MS", integer(&c.RedisTimeout))
	set("REDIS_RETRY_AFTER_S", float(&c.RedisRetry))
	set("TRITON_TIMEOUT_MS", integer(&c.TritonTimeout))
	set("MODEL_INFO_TTL_S", float(&c.ModelInfoTTL))
	set("MAX_IN_FLIGHT", integer(&c.MaxInFlight))
	set("MAX_BODY_BYTES", integer(&c.MaxBodyBytes))
	set("API_KEYS", list(&c.APIKeys))
	if err == nil && len(c.TritonURLs) == 0 {
		err = fmt.Errorf("GATEWAY_TRITON_URL: no endpoint given")
	}
	if err == nil {
		err = c.outOfRange()
	}
	return c, err
}

// Upper bounds, as gateway/settings.py's MAX_MS, MAX_S and MAX_INT32.
const (
	maxMillis  = 86_400_000
	maxSeconds = 86_400
	maxInt32   = 1<<31 - 1
)

// outOfRange names the first setting outside its range, as gateway/settings.py bounds it: ports
// 1-65535; counts, timeouts and sizes at least 1; TTLs, delays and the cacheable size at least 0;
// timeouts at most a day, counts, sizes and TTLs at most 2^31-1.
func (c Config) outOfRange() error {
	bounds := []struct {
		name      string
		value     float64
		low, high float64
	}{
		{"GRPC_PORT", float64(c.GRPCPort), 1, 65535},
		{"GRPC_METRICS_PORT", float64(c.MetricsPort), 1, 65535},
		{"CACHE_TTL_S", float64(c.CacheTTL), 0, maxInt32},
		{"CACHE_MAX_VALUE_BYTES", float64(c.MaxValueBytes), 0, maxInt32},
		{"REDIS_TIMEOUT_MS", float64(c.RedisTimeout), 1, maxMillis},
		{"REDIS_RETRY_AFTER_S", c.RedisRetry, 0, maxSeconds},
		{"TRITON_TIMEOUT_MS", float64(c.TritonTimeout), 1, maxMillis},
		{"MODEL_INFO_TTL_S", c.ModelInfoTTL, 0, maxSeconds},
		{"MAX_IN_FLIGHT", float64(c.MaxInFlight), 1, maxInt32},
		{"MAX_BODY_BYTES", float64(c.MaxBodyBytes), 1, maxInt32},
	}
	for _, b := range bounds {
		if b.value < b.low {
			return fmt.Errorf("GATEWAY_%s=%v: must be at least %v", b.name, b.value, b.low)
		}
		if b.value > b.high {
			return fmt.Errorf("GATEWAY_%s=%v: must be at most %v", b.name, b.value, b.high)
		}
	}
	for model, ttl := range c.ModelTTL {
		if ttl < 0 || ttl > maxInt32 {
			return fmt.Errorf("GATEWAY_CACHE_MODEL_TTL_S: %q: %d is outside 0-%d", model, ttl, maxInt32)
		}
	}
	return nil
}

// parseModelTTL reads a JSON object of integers, as gateway/settings.py does: null, strings,
// fractions and null values are refused (json.Unmarshal into map[string]int would take null, and a
// null value, as "nothing": a TTL of 0, "do not cache").
func parseModelTTL(value string, ttl *map[string]int) error {
	var read map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &read); err != nil {
		return err
	}
	if read == nil {
		return fmt.Errorf(`not a JSON object of integers, e.g. {"digits": 60}`)
	}
	parsed := map[string]int{}
	for model, raw := range read {
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("%q: %s is not an integer", model, raw)
		}
		parsed[model] = n
	}
	*ttl = parsed
	return nil
}

// TTL is the cache time to live of a model's predictions in seconds; 0 means do not cache.
func (c Config) TTL(model string) int {
	if !c.CacheEnabled {
		return 0
	}
	if ttl, ok := c.ModelTTL[model]; ok {
		return ttl
	}
	return c.CacheTTL
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func millis(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

func commaList(value string) []string {
	items := []string{}
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseBool accepts what pydantic accepts for a bool.
func parseBool(value string) (bool, error) {
	switch strings.ToLower(value) {
	case "1", "on", "t", "true", "y", "yes":
		return true, nil
	case "0", "off", "f", "false", "n", "no":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

func mustConfig() Config {
	c, err := configFromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	return c
}
