# Issue 10: per-paper reproduction pipelines, figures, executed notebooks, experiments/REPORT.md.
# SCALE=small runs in CI minutes-to-an-hour on 2 cores; SCALE=full is what REPORT.md quotes.
SCALE ?= small
REPRO_CACHE ?= $${LLMSYS_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/llmsys}/repro
# small SpecForge draft: few steps on few conversations (weights stay in the cache, never in git)
SPEC_SMALL_TRAIN ?= data.limit=64 max_steps=40 ckpt_every=20 tensorboard=false
RESULTS := experiments/results

.PHONY: repro-speculative repro-sopr_rag repro-sparse_align report figures notebooks notebooks-small test-experiments \
	_check-scale

_check-scale:
	@case "$(SCALE)" in small|full) ;; *) echo "SCALE must be small or full (got '$(SCALE)')" >&2; exit 2;; esac

repro-speculative: _check-scale ## SpecForge/EAGLE-3: SCALE=small small draft + quick eval -> speculative_eval_small.json (~1 h); SCALE=full speculative-bundle + kernel bench (~1 day on 2-core CPU)
ifeq ($(SCALE),full)
	$(MAKE) speculative-bundle
	$(MAKE) bench-kernels
else
	$(MAKE) speculative-train ARGS="$(SPEC_SMALL_TRAIN) out_dir=$(REPRO_CACHE)/speculative-small"
	$(MAKE) speculative-eval-quick ARGS="draft_dir=$(REPRO_CACHE)/speculative-small/export vllm.enabled=false \
		out_json=$(RESULTS)/speculative_eval_small.json out_md=$(RESULTS)/speculative_eval_small.md"
endif
	$(MAKE) figures report

repro-sopr_rag: _check-scale ## SOPRAG vs baselines: SCALE=small sopr_rag-eval (~6 min first run); SCALE=full + LLM utility + latency bench (~1 h on 2-core CPU)
	$(MAKE) sopr_rag-eval
ifeq ($(SCALE),full)
	$(MAKE) sopr_rag-eval-utility
	$(MAKE) bench-sopr_rag
endif
	$(MAKE) figures report

repro-sparse_align: _check-scale ## SIA vs dense/random/BoN: SCALE=small toy pipeline -> sparse_align_eval_small.json (~15 min); SCALE=full -> sparse_align_eval_full.json (~60 min on 2-core CPU)
ifeq ($(SCALE),full)
	$(MAKE) sparse_align-eval
else
	$(MAKE) sparse_align-eval-small
endif
	$(MAKE) figures report

report: ## experiments/REPORT.md: per paper claim / setup / our number / verdict from experiments/results/*.json (~5 s)
	$(PY) -m experiments.report

figures: ## every experiments/figures/ script on the result JSONs that exist -> PNGs under experiments/results/ (~30 s)
	@r=$(RESULTS); \
	for f in speculative_eval speculative_eval_small; do if [ -f $$r/$$f.json ]; then \
		PYTHONPATH=. $(PY) experiments/figures/speculative_eval.py $$r/$$f.json $$r/figures/$$f || exit 1; fi; done; \
	if [ -f $$r/sopr_rag_eval.json ]; then $(PY) experiments/figures/sopr_rag_by_intent.py $$r/sopr_rag_eval.json || exit 1; fi; \
	for f in sparse_align_eval_full sparse_align_eval_small; do if [ -f $$r/$$f.json ]; then \
		$(PY) experiments/figures/sparse_align_reward_vs_cost.py $$r/$$f.json || exit 1; fi; done

notebooks: ## execute experiments/notebooks/{speculative,sopr_rag,sparse_align}.ipynb in place, tiny live step + latest results (~1.5-3 min)
	OMP_NUM_THREADS=1 $(PY) experiments/run_notebooks.py --live tiny

notebooks-small: ## execute the notebooks with their small-scale pipelines (make repro-<paper> SCALE=small inside; ~1.5 h)
	$(PY) experiments/run_notebooks.py --live small

test-experiments: ## tests/experiments: report golden file, figure scripts, notebooks incl. tiny live steps (~2 min on 2-core CPU)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests/experiments
