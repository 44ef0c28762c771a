# SOPRAG evaluation, baselines and benchmark construction (issue 8). Included by the top Makefile.
RAG_EVAL_SPEC ?= experiments/configs/soprag/eval_runbooks.yaml
RAG_BENCH_SPEC ?= experiments/configs/soprag/bench_runbooks_smollm2.yaml

.PHONY: rag-eval rag-eval-utility rag-bench-build rag-figures test-rag-eval

rag-eval: ## index the 108 runbooks, every method + ablations on dev and dev-hard -> experiments/results/rag_eval.{json,md} (~6 min first run, ~3 min after)
	$(PY) -m sopr_rag evaluate --spec $(RAG_EVAL_SPEC)

rag-eval-utility: ## rag-eval + SmolLM2 answers and LLM-judge utility on the first 10 queries per set and method (~30 min on CPU)
	$(PY) -m sopr_rag evaluate --spec $(RAG_EVAL_SPEC) --utility --out experiments/results/rag_eval_utility.json

rag-bench-build: ## multi-agent benchmark builder on SmolLM2 over 4 runbooks -> experiments/results/rag_bench_smollm2.* (~15-50 min on 2-core CPU)
	$(PY) -m sopr_rag build-bench --spec $(RAG_BENCH_SPEC)

rag-figures: ## per-method MRR / Hit@1 bars by intent from rag_eval.json -> experiments/results/soprag_*.png (~10 s)
	$(PY) experiments/figures/soprag_by_intent.py experiments/results/rag_eval.json

test-rag-eval: ## tests for sopr_rag retrieval primitives, baselines, eval and bench (~2 min on 2 cores)
	$(PY) -m pytest -q tests/sopr_rag/retrieval tests/sopr_rag/baselines tests/sopr_rag/eval tests/sopr_rag/bench
