package main

import "testing"

// How both gateways read each variable is in the conformance corpus (corpus_test.go); these are
// the TTL rules built on the settings.

func env(values map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := values[name]; return v, ok }
}

func TestAModelsTTLIsItsOwnOrTheDefault(t *testing.T) {
	c, err := configFromEnv(env(map[string]string{"GATEWAY_CACHE_MODEL_TTL_S": `{"digits": 60, "minilm": 0}`}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL("digits") != 60 || c.TTL("minilm") != 0 || c.TTL("other") != 3600 {
		t.Errorf("TTLs %d %d %d", c.TTL("digits"), c.TTL("minilm"), c.TTL("other"))
	}
}

func TestCachingOffMeansNoTTL(t *testing.T) {
	c, _ := configFromEnv(env(map[string]string{"GATEWAY_CACHE_ENABLED": "false"}))
	if c.TTL("digits") != 0 {
		t.Error("caching is off but a TTL was given")
	}
}
