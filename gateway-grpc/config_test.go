package main

import (
	"testing"
	"time"
)

func env(values map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := values[name]; return v, ok }
}

func TestSettingsAreReadFromTheGatewaysEnvironmentVariables(t *testing.T) {
	c, err := configFromEnv(env(map[string]string{
		"GATEWAY_TRITON_URL": "a:8001, b:8001", "GATEWAY_CACHE_ENABLED": "yes",
		"GATEWAY_CACHE_MODEL_TTL_S": `{"digits": 60, "minilm": 0}`, "GATEWAY_API_KEYS": "k1,k2",
		"GATEWAY_REDIS_RETRY_AFTER_S": "0.5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TritonURLs) != 2 || c.TritonURLs[1] != "b:8001" || len(c.APIKeys) != 2 {
		t.Errorf("lists read as %v and %v", c.TritonURLs, c.APIKeys)
	}
	if c.TTL("digits") != 60 || c.TTL("minilm") != 0 || c.TTL("other") != 3600 {
		t.Errorf("TTLs %d %d %d", c.TTL("digits"), c.TTL("minilm"), c.TTL("other"))
	}
	if seconds(c.RedisRetry) != 500*time.Millisecond {
		t.Errorf("retry after %v", seconds(c.RedisRetry))
	}
}

func TestAMalformedVariableIsAnErrorNamingIt(t *testing.T) {
	_, err := configFromEnv(env(map[string]string{"GATEWAY_MAX_IN_FLIGHT": "many"}))
	if err == nil || err.Error()[:21] != "GATEWAY_MAX_IN_FLIGHT" {
		t.Errorf("got %v", err)
	}
	if _, err := configFromEnv(env(map[string]string{"GATEWAY_CACHE_ENABLED": "maybe"})); err == nil {
		t.Error("a non-boolean was accepted")
	}
}

func TestCachingOffMeansNoTTL(t *testing.T) {
	c, _ := configFromEnv(env(map[string]string{"GATEWAY_CACHE_ENABLED": "false"}))
	if c.TTL("digits") != 0 {
		t.Error("caching is off but a TTL was given")
	}
}
