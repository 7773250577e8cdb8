#!/usr/bin/env bash
# Builds gateway-grpc with Debian's Go toolchain and Go libraries (GOPATH mode: nothing is
# downloaded) and Go types generated from the KServe v2 protos that tritonclient ships.
#   usage: gateway-grpc/build.sh PYTHON OUTPUT [PACKAGE_DIR]   (PYTHON: an interpreter with
#   tritonclient and the gateway package; PACKAGE_DIR: another Go command that uses the KServe
#   types, e.g. the benchmark's benchmarks/paired_infer; default gateway-grpc)
# The strings both front ends share (Triton's message markers, config parameter names) are
# generated from the Python gateway into the Go package gatewaygrpc/shared (messages.py).
# Installs the Debian packages it needs when they are missing (root or sudo). Runs the Go tests
# when GATEWAY_GRPC_TEST=1.
set -euo pipefail
python=$1
output=$(realpath -m "$2")
source_dir=$(cd "$(dirname "$0")" && pwd)
build=$(realpath -m "$source_dir/../build/go")
package_dir=$(realpath "${3:-$source_dir}")

packages=(golang-go protobuf-compiler golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev golang-github-gomodule-redigo-dev
  golang-golang-x-crypto-dev golang-github-prometheus-client-golang-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "error: gateway-grpc needs the Debian packages ${missing[*]}" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "gateway-grpc: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export GO111MODULE=off GOPATH="$build:/usr/share/gocode" GOCACHE="$build/cache" GOFLAGS=-trimpath
kserve="$build/src/gatewaygrpc/kserve"
shared="$build/src/gatewaygrpc/shared"
mkdir -p "$kserve" "$shared" "$build/bin"
go build -o "$build/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
"$python" "$source_dir/protos.py" "$build/kserve.pb"
protoc --plugin=protoc-gen-go="$build/bin/protoc-gen-go" --descriptor_set_in="$build/kserve.pb" \
  --go_out="$kserve" --go_opt=paths=source_relative \
  --go_opt=Mgrpc_service.proto=gatewaygrpc/kserve --go_opt=Mmodel_config.proto=gatewaygrpc/kserve \
  grpc_service.proto model_config.proto
"$python" "$source_dir/messages.py" "$shared/shared.go"
cd "$package_dir"
go vet .
if [ "${GATEWAY_GRPC_TEST:-0}" = 1 ]; then
  go test -count=1 .
fi
go build -o "$output" .
echo "gateway-grpc: built $output"
