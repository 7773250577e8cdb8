// Model names and versions as Triton resolves them, as gateway/model_names.py: a name Triton would
// cut at a NUL is an unknown model (404), a version is written as the number Triton answers ("01"
// -> "1"), so one model has one name and one version in answers, cache keys and metric labels.
package main

import (
	"math/big"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unknownModel is Triton 2.51's NOT_FOUND for a model (or version) it does not serve.
func unknownModel(model, version string) error {
	shown := "'" + model + "'"
	if version != "" {
		shown += " version " + version
	}
	return status.Error(codes.NotFound, "Request for unknown model: "+shown+" is not found")
}

// checkModelName refuses, as an unknown model, a name holding a NUL: Triton's C API would cut it
// short and serve another model.
func checkModelName(model string) error {
	if strings.ContainsRune(model, 0) {
		return unknownModel(model, "")
	}
	return nil
}

// canonicalVersion is a requested version as Triton answers it: "" (the latest) as is, decimal
// digits as their number without leading zeros; anything else (a sign, spaces, letters, a number
// beyond int64) is a client mistake in Triton's words.
func canonicalVersion(version string) (string, error) {
	if version == "" {
		return version, nil
	}
	number, ok := new(big.Int).SetString(version, 10)
	if !ok || strings.TrimLeft(version, "0123456789") != "" || !number.IsInt64() {
		return "", badRequest("invalid model version specified '%s' , version should be an integral value > 0", version)
	}
	return number.String(), nil
}
