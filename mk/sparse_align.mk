# SIA (sparse inference-time alignment): tests, demo, experiments. LLMSYS_THREADS=1 by default: on a
# shared 2-core CPU one torch thread runs ~10x faster than two spinning ones.
SIA_THREADS ?= 1

.PHONY: test-align test-align-slow align-demo align-eval align-eval-small align-eval-harmless align-figure

test-align: ## SIA unit tests, tiny models + real SmolLM2 where it matters (~2-3 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" tests/sparse_align

test-align-slow: ## SIA vLLM tests: in-process engine + OpenAI server with the processor (~8 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow tests/sparse_align

align-demo: ## SIA demo: steer the real SmolLM2 with a quickly distilled VADER value model (~2 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m sparse_align.demo

align-eval-small: ## SIA pipeline end to end at toy size: distill, train, all methods (~15 min on loaded 2-core CPU)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --scale small --threads $(SIA_THREADS)

align-eval: ## SIA reported run: distill 200x4 + train on SmolLM2, 50 prompts x all methods + batch-1 timing (see configs/sia/full.yaml for measured time)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --scale full --threads $(SIA_THREADS)
	$(PY) experiments/figures/sia_reward_vs_cost.py experiments/results/sia_eval_full.json

align-figure: ## SIA reward-vs-cost figure from experiments/results/sia_eval_*.json (~5 s)
	$(PY) experiments/figures/sia_reward_vs_cost.py experiments/results/sia_eval_full.json

align-eval-harmless: ## SIA harmlessness run with the LLM-judge teacher (Qwen2.5-0.5B if installed; ~20-30 min on loaded 2-core CPU)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --config experiments/configs/sia/harmless.yaml --threads $(SIA_THREADS)
