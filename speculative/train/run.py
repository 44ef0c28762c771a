"""`python -m speculative train --config FILE [key=value ...]`: train an EAGLE-3 draft (one verb, every mode).

One process with the target online (DraftTrainConfig) unless the run is distributed or offline: the keys
`target_kind`, `offline_dir` or `parallel` given (in the file or as overrides), several ranks
(`torchrun --nproc_per_node=N -m speculative train ...`), or an out_dir whose stored config.yaml holds those
keys (a run started on that path resumes on it). That path (DistTrainConfig, speculative/parallel/run.py)
trains from precomputed shards (`target_kind=offline offline_dir=...`), a megatron TP target and an FSDP2
draft. Re-running with the same out_dir resumes from its newest checkpoint (after a crash or kill -9).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from runtime.config import config_from_cli
from runtime.logging import get_logger
from speculative.export import export_draft
from speculative.parallel.config import DIST_KEYS, DistTrainConfig
from speculative.parallel.run import train_dist
from speculative.train.build import build_training
from speculative.train.config import DraftTrainConfig
from speculative.train.trainer import DraftTrainer

log = get_logger("speculative.train")


def log_last(history: list[dict[str, Any]]) -> None:
    if history:
        last = history[-1]
        log.info("step %d: loss %.4f acc_0 %.3f accept_len %.3f", last["step"], last["loss"], last["acc_0"],
                 last["accept_len"])


def train(cfg: DraftTrainConfig) -> list[dict[str, Any]]:
    """The single-process run: HF target online, plain DraftTrainer; exports at the end when cfg.export."""
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    setup = build_training(cfg)
    trainer = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples)
    history = trainer.train()
    log_last(history)
    if cfg.export:
        out = export_draft(setup.draft.cpu(), Path(cfg.out_dir) / "export")
        log.info("exported draft to %s", out)
    return history


def stored_dist_keys(out_dir: str | Path) -> set[str]:
    """The distributed keys in `out_dir/config.yaml` (what an earlier run there was started with)."""
    path = Path(out_dir) / "config.yaml"
    if not path.is_file():
        return set()
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))
    return set(DIST_KEYS) & set(stored) if isinstance(stored, dict) else set()


def uses_dist(cfg: DistTrainConfig) -> bool:
    """True for the distributed / offline path (see the module doc)."""
    given = set(DIST_KEYS) & cfg.model_fields_set  # keys present in the file or the overrides
    return bool(given) or int(os.environ.get("WORLD_SIZE", "1")) > 1 or bool(stored_dist_keys(cfg.out_dir))


def plain_config(cfg: DistTrainConfig) -> DraftTrainConfig:
    return DraftTrainConfig.model_validate(cfg.model_dump(exclude=set(DIST_KEYS)))


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(DistTrainConfig, argv, description=__doc__,
                          example="max_steps=20 optim.lr=1e-4 (offline: target_kind=offline offline_dir=DIR)")
    if uses_dist(cfg):
        return train_dist(cfg)
    train(plain_config(cfg))
    return 0
