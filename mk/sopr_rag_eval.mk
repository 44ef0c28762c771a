# SOPRAG evaluation, baselines and benchmark construction (issue 8). Included by the top Makefile.
RAG_EVAL_SPEC ?= experiments/configs/sopr_rag/eval_runbooks.yaml
RAG_BENCH_SPEC ?= experiments/configs/sopr_rag/bench_runbooks_smollm2.yaml

.PHONY: sopr_rag-eval-llm-cards sopr_rag-eval-openshift-llm-cards sopr_rag-eval sopr_rag-eval-openshift sopr_rag-eval-utility sopr_rag-utility-qwen sopr_rag-bench-build sopr_rag-bench-qwen sopr_rag-figures \
	test-sopr_rag-eval

sopr_rag-eval: ## index the 108 runbooks, every method + ablations on dev and dev-hard -> experiments/results/sopr_rag_eval.{json,md} (~6 min first run, ~3 min after)
	$(PY) -m sopr_rag evaluate --spec $(RAG_EVAL_SPEC)

sopr_rag-eval-llm-cards: ## sopr_rag-eval with LLM Procedure Cards (experiments/configs/sopr_rag/llm_cards.yaml; own index *-llmcards) -> experiments/results/sopr_rag_eval_llm_cards.* (~10 min LLM cards for 108 runbooks on first run, then ~4 min)
	$(PY) -m sopr_rag evaluate --spec $(RAG_EVAL_SPEC) --config experiments/configs/sopr_rag/llm_cards.yaml \
		--ablations=-entity,-causal,no-proposals,no-trust --out experiments/results/sopr_rag_eval_llm_cards.json

sopr_rag-eval-openshift-llm-cards: ## the OpenShift held-out check with LLM Procedure Cards -> experiments/results/sopr_rag_eval_openshift_llm_cards.* (~15-20 min LLM cards for 271 runbooks on first run)
	$(PY) -m sopr_rag evaluate --spec experiments/configs/sopr_rag/eval_openshift.yaml \
		--config experiments/configs/sopr_rag/llm_cards.yaml --ablations=-entity,-causal,no-proposals \
		--out experiments/results/sopr_rag_eval_openshift_llm_cards.json

OPENSHIFT_KNOWN ?= $(HOME)/.cache/llmsys/sopr_rag/openshift.known_items.jsonl

OPENSHIFT_SETS = $(addprefix --queries experiments/configs/sopr_rag/openshift.,heldout.jsonl plain.jsonl symptom.jsonl)

sopr_rag-eval-openshift: ## check on the 271 OpenShift runbooks: 15 + 30 symptom-style, 40 plain and 63 known-item queries, every method + ablations -> experiments/results/sopr_rag_eval_openshift.* (~10 min first run: indexes 271 docs)
	$(PY) experiments/configs/sopr_rag/known_items.py ../shared/data/sop/openshift-runbooks $(OPENSHIFT_KNOWN)
	$(PY) -m sopr_rag evaluate --spec experiments/configs/sopr_rag/eval_openshift.yaml \
		$(OPENSHIFT_SETS) --queries $(OPENSHIFT_KNOWN)

sopr_rag-utility-qwen: ## LLM-judge utility + execution score, first 12 dev-hard queries, soprag/hybrid/bm25, Qwen2.5-Coder-0.5B (make assets-large) -> experiments/results/sopr_rag_utility_qwen.* (~40-60 min on a busy 2-core CPU)
	$(PY) -m sopr_rag evaluate --spec experiments/configs/sopr_rag/eval_utility_qwen.yaml

sopr_rag-eval-utility: ## sopr_rag-eval + SmolLM2 answers and LLM-judge utility on the first 10 queries per set and method (~30 min on CPU)
	$(PY) -m sopr_rag evaluate --spec $(RAG_EVAL_SPEC) --utility --out experiments/results/sopr_rag_eval_utility.json

sopr_rag-bench-build: ## multi-agent benchmark builder on SmolLM2 over 4 runbooks -> experiments/results/sopr_rag_bench_smollm2.* (~15-50 min on 2-core CPU)
	$(PY) -m sopr_rag build-bench --spec $(RAG_BENCH_SPEC)

sopr_rag-bench-qwen: ## benchmark builder on Qwen2.5-Coder-0.5B (in-process HF), 4 runbooks, with JSON repair turns -> experiments/results/sopr_rag_bench_qwen_repair.* (~10-40 min on CPU)
	$(PY) -m sopr_rag build-bench --spec experiments/configs/sopr_rag/bench_runbooks_qwen_repair.yaml

sopr_rag-figures: ## per-method MRR / Hit@1 bars by intent from sopr_rag_eval.json -> experiments/results/sopr_rag_*.png (~10 s)
	$(PY) experiments/figures/sopr_rag_by_intent.py experiments/results/sopr_rag_eval.json

test-sopr_rag-eval: ## tests for sopr_rag retrieval primitives, baselines, eval and bench (~2 min on 2 cores)
	$(PY) -m pytest -q tests/sopr_rag/retrieval tests/sopr_rag/baselines tests/sopr_rag/eval tests/sopr_rag/bench
