"""SIA: distil a value model from a teacher, steer at junction tokens, evaluate against dense / random /
BoN. Every verb takes one config: `--config FILE` (YAML, e.g. experiments/configs/sparse_align/small.yaml
for the toy run, full.yaml for the reported one) and dotted `key=value` overrides; without --config a verb
runs on SIAConfig's defaults (name `default`, a mid-size setting that no report quotes). Torch threads:
`threads=N` (default $LLMSYS_THREADS, else 1); result files: `results_dir=DIR` (default $LLMSYS_RESULTS_DIR,
else ./results); artifacts: the cache dir sia/<name> (`run_dir=DIR`)."""

from __future__ import annotations

from runtime.cli import Verb, run_verbs

VERBS = [
    Verb("distill", "sparse_align.verbs:distill", "sample the base model, label the responses with the teacher"),
    Verb("train", "sparse_align.verbs:train", "train the value model on the distillation data"),
    Verb("evaluate", "sparse_align.verbs:evaluate", "single-sample comparison of every method"),
    Verb("timing", "sparse_align.verbs:timing", "batch-1 wall time per token at evaluate's taus"),
    Verb("run", "sparse_align.verbs:run", "distill + train + evaluate"),
    Verb("junctions", "sparse_align.verbs:junctions", "where the one-token gain is, per junction detector"),
    Verb("sweep", "sparse_align.verbs:sweep", "w sweep on training prompts (reward vs KL, value calls)"),
    Verb("posttrain", "sparse_align.verbs:posttrain", "the post-trained stand-in (LoRA on its own best-of-N)"),
    Verb("powered", "sparse_align.verbs:powered", "the paired, powered evaluation (resumes per arm)"),
    Verb("powered-status", "sparse_align.verbs:powered_status", "interim report of a powered run from its partial file"),
    Verb("run-powered", "sparse_align.verbs:run_powered", "distill + train + powered"),
    Verb("export-head", "sparse_align.verbs:export_head", "ship the trained head into sparse_align/assets"),
    Verb("demo", "sparse_align.demo:main", "base vs SIA on one prompt of the real SmolLM2 (~2 min on a CPU)"),
]


def main(argv: list[str] | None = None) -> int:
    return run_verbs("python -m sparse_align", __doc__, VERBS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
