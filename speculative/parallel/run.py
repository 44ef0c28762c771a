"""The distributed / offline path of `python -m speculative train` (chosen by speculative/train/run.py).

    torchrun --nproc_per_node=2 -m speculative train --config experiments/configs/speculative/dist_smollm2.yaml
    python -m speculative train --config experiments/configs/speculative/offline_train_smollm2.yaml

Also one process, e.g. offline training from shards with `target_kind=offline offline_dir=...`.
Re-running with the same out_dir and world size resumes.
"""

from __future__ import annotations

from pathlib import Path

from runtime.distributed import destroy, is_main
from runtime.logging import get_logger
from speculative.export import export_draft
from speculative.parallel.build import build_dist_training
from speculative.parallel.config import DistTrainConfig
from speculative.parallel.fsdp import FSDPDraftTrainer

log = get_logger("speculative.train_dist")


def train_dist(cfg: DistTrainConfig) -> int:
    try:
        trainer = build_dist_training(cfg)
        history = trainer.train()
        if history and is_main():
            last = history[-1]
            log.info("step %d: loss %.4f acc_0 %.3f accept_len %.3f", last["step"], last["loss"], last["acc_0"],
                     last["accept_len"])
        if cfg.export:
            draft = trainer.export_draft() if isinstance(trainer, FSDPDraftTrainer) else trainer.draft.cpu()
            if draft is not None:
                log.info("exported draft to %s", export_draft(draft, Path(cfg.out_dir) / "export"))
    finally:
        destroy()
    return 0
