# Conversion targets (owned by the conversion pipeline).
# make convert                      build the demo models that are missing (digits, MiniLM + text ensembles)
# make convert MODEL=pkg.mod:factory|model.onnx|hf:FOLDER NAME=... CALIB=... VALID=... \
#              [REPOSITORY=model_repository] [INPUTS="image:float32:batch,1,8,8"] \
#              [OUTPUTS="logits score:regression:batch,1"] [TASK=classification] [CONVERT_ARGS=...]
#              (INPUTS/OUTPUTS: inferred when left out; NAME: the factory's function name or the
#              file's stem when left out, e.g. MODEL=mymodels:build serves `build`)
# make profile MODEL=digits|minilm|path/to/model.onnx
# make convert-bench                throughput claims (MiniLM INT8 vs eager, digits INT8 vs ORT FP32)

NAME ?= $(if $(findstring :,$(MODEL)),$(lastword $(subst :, ,$(MODEL))),$(basename $(notdir $(MODEL))))
REPOSITORY ?= model_repository
INPUTS ?=
OUTPUTS ?=
CALIB ?=
VALID ?=
TASK ?= classification
CONVERT_ARGS ?=

.PHONY: convert profile convert-bench tensorrt

convert: $(STAMP) ## Build missing demo models, or convert MODEL=... (see mk/conversion.mk)
ifeq ($(strip $(MODEL)),)
	$(PY) -m conversion demo --repository "$(REPOSITORY)"
else
	$(PY) -m conversion convert --model "$(MODEL)" --name "$(NAME)" --repository "$(REPOSITORY)" \
		$(foreach i,$(INPUTS),--input "$(i)") $(foreach o,$(OUTPUTS),--output "$(o)") \
		--calibration "$(CALIB)" --validation "$(VALID)" --task "$(TASK)" $(CONVERT_ARGS)
endif

profile: $(STAMP) ## Profile MODEL=digits|minilm|file.onnx: PyTorch profiler + ORT profiling
	$(PY) -m conversion profile --model "$(or $(MODEL),digits)"

convert-bench: $(STAMP) ## Throughput of the INT8 variants against FP32 baselines at batch 32
	$(PY) -m conversion bench

tensorrt: $(STAMP) ## Build TensorRT plans for the converted models (needs TensorRT + a CUDA GPU)
	$(PY) -m conversion tensorrt --repository "$(REPOSITORY)"
