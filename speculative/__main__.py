"""EAGLE-3 draft training (SpecForge-style), export, evaluation and speculative decoding.

The draft's stages in order: regenerate -> prepare (offline only) -> train -> export -> evaluate; `bundle`
runs them all for the shipped draft. Several ranks: `torchrun --nproc_per_node=N -m speculative train ...`.
"""

from __future__ import annotations

from runtime.cli import Verb, run_verbs

VERBS = [
    Verb("regenerate", "speculative.data.regenerate:main",
         "answer conversations with the target itself (self-distillation data), resumable"),
    Verb("prepare", "speculative.offline.prepare:main",
         "run the target once over the data: hidden-state shards for offline training, resumable"),
    Verb("train", "speculative.train.run:main",
         "train the draft, resumable (distributed/offline: target_kind, offline_dir, parallel or torchrun)"),
    Verb("export", "speculative.export.checkpoint:main", "export a training checkpoint in the vLLM/SGLang format"),
    Verb("evaluate", "speculative.evaluate.run:main",
         "tau, acceptance and speed-up vs autoregressive decoding on benchmarks (+ vLLM baselines)"),
    Verb("bundle", "speculative.evaluate.bundle:main",
         "the draft bundle: regenerate -> prepare -> train -> ship -> evaluate -> model card"),
    Verb("model-card", "speculative.evaluate.model_card:main", "rewrite a bundle's model card from its records"),
    Verb("profile", "speculative.evaluate.profile:main",
         "target forward latency vs tokens verified at once, AR rate, per-layer breakdown"),
    Verb("profile-step", "speculative.train.profile_step:main",
         "where a draft training step spends its time (forward per piece, backward ops)"),
    Verb("vllm-check", "speculative.export.vllm_check:main",
         "run an export inside vLLM: outputs and spec-decode counters as JSON"),
    Verb("recipe", "speculative.train.recipe:main",
         "draft-vocab coverage and train tokens/s per (ttt, vocab) on prepared shards"),
    Verb("bench-train", "speculative.train.bench:main",
         "draft-training tokens/s + peak RSS, ours vs the naive full-vocab path"),
    Verb("bench-specforge", "speculative.train.bench_specforge:main",
         "offline draft training at SpecForge's CPU configuration: target tok/s + peak RSS per precision"),
    Verb("bench-parallel", "speculative.parallel.bench:main",
         "online vs offline training throughput, 1 vs 2 ranks, offline bytes/token"),
    Verb("demo", "speculative.demo:main", "tiny end-to-end draft training on the real target: train, export, reload"),
    Verb("decode-demo", "speculative.decode.demo:main",
         "speculative decoding on the real target: AR vs EAGLE-3 / lookup / hybrid, timed"),
]


def main(argv: list[str] | None = None) -> int:
    return run_verbs("python -m speculative", __doc__, VERBS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
