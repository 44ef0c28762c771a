# SIA (sparse inference-time alignment): tests, demo, experiments. One command grammar:
# python -m sparse_align <verb> --config FILE [key=value ...]. One torch thread by default (threads=N): on a
# shared 2-core CPU one torch thread runs ~10x faster than two spinning ones.
SIA_THREADS ?= 1

.PHONY: test-sparse_align test-sparse_align-slow sparse_align-demo sparse_align-eval sparse_align-eval-small sparse_align-eval-harmless sparse_align-figure \
	sparse_align-deps sparse_align-distill sparse_align-train sparse_align-junctions sparse_align-sweep sparse_align-powered sparse_align-powered-status sparse_align-powered-smoke \
	sparse_align-gemma-distill sparse_align-gemma-train sparse_align-gemma-junctions sparse_align-gemma-sweep sparse_align-gemma-posttrain sparse_align-gemma-powered

test-sparse_align: ## SIA unit tests, tiny models + real SmolLM2 where it matters (~2-3 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" tests/sparse_align

test-sparse_align-slow: ## SIA vLLM tests: in-process engine + OpenAI server with the processor (~8 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow tests/sparse_align

sparse_align-demo: ## SIA demo: steer the real SmolLM2 with a quickly distilled VADER value model (~2 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m sparse_align demo

sparse_align-eval-small: ## SIA pipeline end to end at toy size: distill, train, all methods (~15 min on loaded 2-core CPU)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --config experiments/configs/sparse_align/small.yaml threads=$(SIA_THREADS)

sparse_align-eval: ## SIA reported run: distill 200x4 + train on SmolLM2, 50 prompts x all methods + batch-1 timing (see configs/sparse_align/full.yaml for measured time)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --config experiments/configs/sparse_align/full.yaml threads=$(SIA_THREADS)
	$(PY) experiments/figures/sparse_align_reward_vs_cost.py experiments/results/sparse_align_eval_full.json

sparse_align-figure: ## SIA reward-vs-cost figure from experiments/results/sparse_align_eval_*.json (~5 s)
	$(PY) experiments/figures/sparse_align_reward_vs_cost.py experiments/results/sparse_align_eval_full.json

sparse_align-eval-harmless: ## SIA harmlessness run with the LLM-judge teacher (Qwen2.5-0.5B if installed; ~20-30 min on loaded 2-core CPU)
	OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align run --config experiments/configs/sparse_align/harmless.yaml threads=$(SIA_THREADS)

# --- issue 14's protocol: SIA = python -m sparse_align <verb> --config <yaml>; every step resumes where it stopped
SIA_RUN = OMP_NUM_THREADS=$(SIA_THREADS) $(PY) -m sparse_align
SIA_FULL = --config experiments/configs/sparse_align/full.yaml threads=$(SIA_THREADS)
SIA_GEMMA = --config experiments/configs/sparse_align/gemma_base.yaml threads=$(SIA_THREADS)

sparse_align-deps: ## second lexicon scorers for the powered evaluation (afinn, textblob; ship their lexicons; ~20 s)
	$(PIP) install -q afinn textblob

sparse_align-powered-smoke: sparse_align-deps ## issue-14 protocol end to end on SmolLM2 at toy size (~6-10 min on 2-core CPU)
	$(SIA_RUN) run-powered --config experiments/configs/sparse_align/powered_smoke.yaml threads=$(SIA_THREADS)
	$(SIA_RUN) junctions --config experiments/configs/sparse_align/powered_smoke.yaml threads=$(SIA_THREADS)
	$(SIA_RUN) sweep --config experiments/configs/sparse_align/powered_smoke.yaml threads=$(SIA_THREADS)

sparse_align-distill: ## SmolLM2: 213 train prompts x 8 samples x 24 tokens + candidate targets (~40 min on loaded 2-core CPU)
	$(SIA_RUN) distill $(SIA_FULL)

sparse_align-train: ## SmolLM2: value head, ranking loss + early stopping; held-out accuracy per entropy band (~15 min)
	$(SIA_RUN) train $(SIA_FULL)

sparse_align-junctions: ## SmolLM2: where the one-token gain is, per detector -> set eval.detector (~5 min)
	$(SIA_RUN) junctions $(SIA_FULL)

sparse_align-sweep: ## SmolLM2: w sweep on training prompts, reward vs KL and value calls -> set eval.weight (~35 min)
	$(SIA_RUN) sweep $(SIA_FULL)

sparse_align-powered: sparse_align-deps ## SmolLM2 powered evaluation: 107 prompts x 8 seeds, all arms (~6-7 h on 2-core CPU; resumes per arm)
	$(SIA_RUN) powered $(SIA_FULL)

sparse_align-powered-status: ## interim report of the SmolLM2 powered run from its partial file (seconds; no model)
	$(SIA_RUN) powered-status $(SIA_FULL)

sparse_align-gemma-distill: ## Gemma-3-270M base: 213 x 8 x 48 tokens + candidates (make assets-large first; 23 min at SIA_THREADS=2 on a 2-vCPU Xeon)
	$(SIA_RUN) distill $(SIA_GEMMA)

sparse_align-gemma-train: ## Gemma-3-270M base: value head on its own backbone (3.3 min, same box)
	$(SIA_RUN) train $(SIA_GEMMA)

sparse_align-gemma-junctions: ## Gemma-3-270M base: junction detectors -> set eval.detector (2 min)
	$(SIA_RUN) junctions $(SIA_GEMMA)

sparse_align-gemma-sweep: ## Gemma-3-270M base: w sweep on training prompts -> set eval.weight (8 min)
	$(SIA_RUN) sweep $(SIA_GEMMA)

sparse_align-gemma-posttrain: ## Gemma-3-270M base: post-trained stand-in, LoRA on its own best-of-8 (~6 min)
	$(SIA_RUN) posttrain $(SIA_GEMMA)

sparse_align-gemma-powered: sparse_align-deps ## Gemma-3-270M base powered evaluation incl. BoN-16 and the post-trained arm (~30 h on 2-core CPU: use a GPU)
	$(SIA_RUN) powered $(SIA_GEMMA)
