# Issue 4: offline hidden states + hybrid parallelism (megatron-core TP target, FSDP2 draft).
SPEC_PREPARE_CONFIG ?= experiments/configs/speculative/offline_smollm2.yaml
SPEC_DIST_CONFIG ?= experiments/configs/speculative/dist_smollm2.yaml
NPROC ?= 2

.PHONY: speculative-prepare-hidden speculative-train-offline speculative-train-dist test-speculative-parallel bench-speculative-parallel

speculative-prepare-hidden: ## SmolLM2 hidden states of the training data -> safetensors shards + manifest; resumable (~1.5 h for 2000 convs, ~3.7 GB bf16; ARGS="data.limit=64")
	$(PY) -m speculative prepare --config $(SPEC_PREPARE_CONFIG) $(ARGS)

speculative-train-offline: ## train the draft from the prepared shards, no target forward (hours; ARGS="max_steps=20")
	$(PY) -m speculative train --config experiments/configs/speculative/offline_train_smollm2.yaml $(ARGS)

speculative-train-dist: ## torchrun NPROC ranks: megatron TP target + FSDP2 draft, gloo on CPU / nccl on CUDA (hours; ARGS="max_steps=4")
	$(PY) -m torch.distributed.run --nproc_per_node=$(NPROC) -m speculative train --config $(SPEC_DIST_CONFIG) $(ARGS)

test-speculative-parallel: ## tests/speculative/{offline,parallel}: shards, resume, TP=2 vs HF, 2-rank FSDP2 step + resume (~2.5 min)
	$(PY) -m pytest -q tests/speculative/offline tests/speculative/parallel

bench-speculative-parallel: ## online vs offline draft-training tokens/s, 1 vs 2 ranks, offline bytes/token -> experiments/results/bench_speculative_parallel.json (~10 min on 2-core CPU)
	$(PY) -m speculative bench-parallel train_config=experiments/configs/speculative/dist_bench.yaml $(ARGS)
