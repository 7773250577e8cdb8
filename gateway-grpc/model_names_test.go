package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The same table as tests/gateway/test_model_names.py.
func TestAVersionIsWrittenAsTritonAnswersIt(t *testing.T) {
	for given, answered := range map[string]string{"": "", "1": "1", "01": "1", "00007": "7", "0": "0"} {
		if got, err := canonicalVersion(given); err != nil || got != answered {
			t.Errorf("%q: %q, %v", given, got, err)
		}
	}
	for _, given := range []string{"+1", " 1", "1 ", "1x", "-1", "0x1", "\u0663", strings.Repeat("9", 20)} {
		_, err := canonicalVersion(given)
		if mistake, ok := err.(clientError); !ok || !strings.Contains(mistake.message, "invalid model version specified '"+given+"'") {
			t.Errorf("%q: %v", given, err)
		}
	}
}

func TestANameWithANulIsTritonsNotFound(t *testing.T) {
	if err := checkModelName("digits"); err != nil {
		t.Fatal(err)
	}
	err := checkModelName("digits\x00x")
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "Request for unknown model: 'digits\x00x' is not found" {
		t.Fatal(err)
	}
}
