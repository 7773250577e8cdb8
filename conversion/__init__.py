"""PyTorch -> ONNX -> optimized, FP16 and INT8 variants -> a Triton model repository."""
