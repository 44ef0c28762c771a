# Issue 6: fused training kernels (csrc/ CPU + CUDA, Triton) behind runtime/ops.
.PHONY: build-ops test-kernels bench-kernels speculative-profile-step check-cuda-binding

build-ops: ## build the csrc/cpu op library in place as runtime._C (what make setup does; ~3 min on 2-core CPU)
	LLMSYS_SKIP_CUDA=1 $(PY) setup.py -q build_ext --inplace

test-kernels: ## tests/runtime/ops: cpu op + Triton (interpreted) + chunked vs float64 reference (~40 s on 2-core CPU)
	TRITON_INTERPRET=1 $(PY) -m pytest -q -rs tests/runtime/ops

bench-kernels: ## fused soft-CE + RMSNorm CPU ops vs eager torch, N=4096 H=576 V=32000 -> experiments/results/bench_kernels.{json,md} (~10 min on 2-core CPU)
	$(PY) -m runtime.ops.bench

speculative-profile-step: ## profile a real EAGLE-3 draft training step (SmolLM2 shapes): why kernel 2 is residual+RMSNorm (~1 min on 2-core CPU)
	$(PY) -m speculative profile-step tokens=1024 vocab=32000 $(ARGS)

check-cuda-binding: ## syntax-check csrc/cuda/*.cpp (torch binding) with g++ against torch + CUDA headers, no GPU (~1 min)
	@stub=$$(mktemp -d); mkdir -p $$stub/c10/cuda/impl; touch $$stub/c10/cuda/impl/cuda_cmake_macros.h; \
	inc=$$($(PY) -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I'+p for p in include_paths()))"); \
	for f in csrc/cuda/*.cpp; do [ -e "$$f" ] || continue; echo "g++ -fsyntax-only $$f"; \
		g++ -std=c++17 -fsyntax-only -w -I$$stub $$inc -I$${CUDA_HOME:-/usr/local/cuda}/include -Icsrc/cuda "$$f" || exit 1; done; \
	rm -rf $$stub
