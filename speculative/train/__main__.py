"""CLI: `python -m speculative.train --config experiments/configs/speculative/smollm2_sharegpt.yaml [k=v ...]`.

Re-running with the same out_dir resumes from its newest checkpoint (after a crash or kill -9).
"""

from __future__ import annotations

from pathlib import Path

from runtime.config import config_from_cli
from runtime.logging import get_logger
from speculative.export import export_draft
from speculative.train.build import build_training
from speculative.train.config import TrainConfig
from speculative.train.trainer import DraftTrainer

log = get_logger("speculative.train")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(TrainConfig, argv, description=__doc__, example="max_steps=20 optim.lr=1e-4")
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    setup = build_training(cfg)
    trainer = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples)
    history = trainer.train()
    if history:
        last = history[-1]
        log.info("step %d: loss %.4f acc_0 %.3f accept_len %.3f", last["step"], last["loss"], last["acc_0"],
                 last["accept_len"])
    if cfg.export:
        out = export_draft(setup.draft.cpu(), Path(cfg.out_dir) / "export")
        log.info("exported draft to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
