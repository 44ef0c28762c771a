# speculative/decode + speculative/evaluate: engine tests, evaluation, profiling, the draft bundle.
SPEC_EVAL_CONFIG ?= experiments/configs/specforge/eval_smollm2.yaml
SPEC_BUNDLE_CONFIG ?= experiments/configs/specforge/bundle_smollm2.yaml

.PHONY: test-spec-decode spec-eval spec-eval-quick spec-profile spec-figures spec-bundle spec-bundle-cpu spec-model-card

test-spec-decode: ## speculative decoding engine + evaluation tests (~2 min)
	$(PY) -m pytest -q tests/speculative/decode

spec-eval: ## tau / acceptance / speed-up vs AR on MT-Bench, HumanEval, ShareGPT + vLLM baselines -> experiments/results/spec_eval.json (many hours; ARGS="draft_dir=...")
	$(PY) -m speculative.evaluate --config $(SPEC_EVAL_CONFIG) $(ARGS)

spec-eval-quick: ## the same on 5 prompts per benchmark, 96 new tokens -> experiments/results/spec_eval_small.json (~20 min)
	$(PY) -m speculative.evaluate --config experiments/configs/specforge/eval_quick.yaml $(ARGS)

spec-profile: ## target forward latency for 1..64 verified tokens on this CPU -> experiments/results/spec_profile.json (~3 min)
	$(PY) -m speculative.evaluate.profile

spec-figures: ## plots from spec_eval.json (tau per benchmark, speed-up vs depth / tree size) (~10 s)
	PYTHONPATH=. $(PY) experiments/figures/specforge_spec_eval.py

spec-bundle: ## (regenerate) -> train the SmolLM2 EAGLE-3 draft -> export -> spec-eval -> model card (~1 day on 2 cores)
	$(PY) -m speculative.evaluate.bundle --config $(SPEC_BUNDLE_CONFIG) $(ARGS)

spec-bundle-cpu: ## the bundle as measured on a 2-core CPU: 550 steps (~1.7 h of steps), eval_bundle_cpu.yaml -> spec_eval_small.{json,md} + model card
	$(PY) -m speculative.evaluate.bundle --config $(SPEC_BUNDLE_CONFIG) 'train_overrides=[max_steps=550]' \
		eval_config=experiments/configs/specforge/eval_bundle_cpu.yaml $(ARGS)

spec-model-card: ## rewrite the bundle's model card from its results (~5 s)
	$(PY) -m speculative.evaluate.model_card
