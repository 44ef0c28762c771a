"""The verbs of `python -m sparse_align` (listed in __main__.py). Each parses `--config FILE [key=value ...]`
into an SIAConfig (no file: SIAConfig's defaults), sets the torch threads (`threads`), loads the base model
once and runs its stages in order; artifacts go to the run dir, result files to `results_dir`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.config import config_from_cli
from runtime.device import set_threads
from sparse_align import pipeline, stages
from sparse_align.config import SIAConfig

Stage = Callable[[SIAConfig, Any, Any], Any]
EXAMPLE = "eval.num_prompts=8 threads=1 results_dir=/tmp/sia"


def _verb(description: str, *steps: Stage) -> Callable[[list[str] | None], int]:
    def verb(argv: list[str] | None = None) -> int:
        cfg = config_from_cli(SIAConfig, argv, description=description, example=EXAMPLE)
        set_threads(cfg.threads)
        model, tok = pipeline.load_base(cfg)
        for step in steps:
            step(cfg, model, tok)
        return 0

    return verb


distill = _verb("Sample the base model on the training prompts and label every response with the task's teacher "
                "(run dir: distill.jsonl; resumes).", pipeline.distill)
train = _verb("Train the value model on the distillation data (run dir: value_model/, train_summary.json).",
              pipeline.train)
evaluate = _verb("The single-sample comparison of every method -> sparse_align_eval_<name>.{json,md}.",
                 pipeline.evaluate)
timing = _verb("Interleaved batch-1 wall time per token at evaluate's calibrated taus -> "
               "sparse_align_timing_<name>.json.",
               pipeline.timing)
run = _verb("distill, train, evaluate in one process.", pipeline.distill, pipeline.train, pipeline.evaluate)
junctions = _verb("Where the one-token reward gain is, per junction detector -> "
                  "sparse_align_junctions_<name>.{json,md}.",
                  stages.junctions)
sweep = _verb("The w sweep on training prompts: reward vs KL and value calls -> sparse_align_sweep_<name>.{json,md}.",
              stages.sweep)
posttrain = _verb("The post-trained stand-in: LoRA on the base model's own teacher-best samples (run dir: "
                  "posttrained/).", stages.posttrain)
powered = _verb("The paired, powered evaluation, resuming per arm -> sparse_align_eval_<name>.{json,md}.",
                stages.powered)


def powered_status(argv: list[str] | None = None) -> int:
    """No model needed: reads the partial file of a powered run."""
    cfg = config_from_cli(SIAConfig, argv, description="Interim report of a powered run from its partial file -> "
                          "sparse_align_eval_<name>.interim.md.", example=EXAMPLE)
    stages.powered_status(cfg)
    return 0


run_powered = _verb("distill, train, powered in one process.", pipeline.distill, pipeline.train, stages.powered)
export_head = _verb("Ship the trained head (sha256 + model card) into sparse_align/assets for the demo.",
                    stages.export_head)
