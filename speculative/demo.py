"""`python -m speculative demo [key=value ...]`: EAGLE-3 draft training end to end on the real SmolLM2 target,
tiny scale.

ShareGPT conversations -> chat rendering with assistant masks -> draft vocab (d2t/t2d) -> online target
states -> TTT unroll training -> vLLM/SGLang export -> reload. About 1-2 minutes on a 2-core CPU. The
config is a training config with tiny defaults; out_dir unset = a temporary folder, removed afterwards.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pydantic import Field

from runtime.config import config_from_cli
from runtime.logging import get_logger
from speculative.export import export_draft, load_exported_draft
from speculative.train.build import build_training
from speculative.train.config import DataConfig, DraftTrainConfig, OptimConfig
from speculative.train.trainer import DraftTrainer

log = get_logger("speculative.demo")


class DemoDataConfig(DataConfig):
    limit: int | None = Field(16, ge=1)
    max_length: int = Field(128, ge=2)
    draft_vocab_size: int = Field(2048, ge=1)


class DemoOptimConfig(OptimConfig):
    lr: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(1, ge=0)
    batch_size: int = 2
    grad_accum: int = 1


class DemoTrainConfig(DraftTrainConfig):
    """DraftTrainConfig with the demo's tiny defaults (16 conversations, 8 steps, ttt 3)."""

    data: DemoDataConfig = DemoDataConfig()
    optim: DemoOptimConfig = DemoOptimConfig()
    ttt_length: int = 3
    max_steps: int = 8
    ckpt_every: int = 4
    tensorboard: bool = False
    export: bool = False  # the demo exports and reloads itself at the end
    out_dir: str | None = None  # None: a temporary folder, removed at the end


def run(cfg: DraftTrainConfig) -> None:
    setup = build_training(cfg)
    print(f"data: {json.dumps(setup.report)}")
    history = DraftTrainer(cfg, setup.target, setup.draft, setup.schedule, setup.val_examples).train()
    first, last = history[0], history[-1]
    print(f"step {first['step']}: loss {first['loss']:.3f} acc_0 {first['acc_0']:.3f} "
          f"accept_len {first['accept_len']:.3f}")
    print(f"step {last['step']}: loss {last['loss']:.3f} acc_0 {last['acc_0']:.3f} "
          f"accept_len {last['accept_len']:.3f}")
    out = export_draft(setup.draft.cpu(), Path(cfg.out_dir) / "export")
    back = load_exported_draft(out, embed_weight=setup.target.embedding_weight().float().cpu())
    cfg_json = json.loads((out / "config.json").read_text())
    print(f"export: {sorted(p.name for p in out.iterdir())}, architectures {cfg_json['architectures']}, "
          f"aux ids {cfg_json['eagle_config']['eagle_aux_hidden_state_layer_ids']}, "
          f"draft vocab {back.config.draft_vocab_size} -> reloaded OK")


def main(argv: list[str] | None = None) -> int:
    demo = config_from_cli(DemoTrainConfig, argv, description=__doc__, example="max_steps=4 threads=2")
    with tempfile.TemporaryDirectory(prefix="spec-demo-") as tmp:
        run(DraftTrainConfig.model_validate(demo.model_dump() | {"out_dir": demo.out_dir or tmp}))
    return 0
