# gateway-grpc: the gateway's native KServe v2 gRPC front end (gateway-grpc/, Go from Debian's
# packages; build/ is ignored by git).
#   make gateway-grpc                   build build/gateway-grpc (installs its Debian packages if missing)
#   make paired-infer                   build build/paired-infer, make bench-gateway's miss client
.PHONY: gateway-grpc paired-infer

GATEWAY_GRPC := build/gateway-grpc
PAIRED_INFER := build/paired-infer

$(GATEWAY_GRPC): $(STAMP) $(wildcard gateway-grpc/*.go) gateway-grpc/build.sh gateway-grpc/protos.py \
		gateway-grpc/messages.py gateway/errors.py gateway/model_config.py
	bash gateway-grpc/build.sh $(PY) $@

gateway-grpc: $(GATEWAY_GRPC) ## Build the native gRPC front end of the gateway (build/gateway-grpc)

$(PAIRED_INFER): $(STAMP) $(wildcard benchmarks/paired_infer/*.go) gateway-grpc/build.sh gateway-grpc/protos.py
	bash gateway-grpc/build.sh $(PY) $@ benchmarks/paired_infer

paired-infer: $(PAIRED_INFER) ## Build bench-gateway's miss client (build/paired-infer)

build/row-load: $(STAMP) $(wildcard benchmarks/row_load/*.go) gateway-grpc/build.sh gateway-grpc/protos.py
	bash gateway-grpc/build.sh $(PY) $@ benchmarks/row_load
