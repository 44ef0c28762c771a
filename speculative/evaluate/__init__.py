"""Evaluation of speculative decoding: benchmarks -> engine runs (spec vs AR, back to back) -> vLLM
baselines -> speculative_eval.json + markdown; plus the draft bundle pipeline and its model card."""
