"""torchrun worker (2 ranks, gloo): TP=2 target vs HF, FSDP2 training steps, 2-rank checkpoint resume.

argv: tiny target folder, chats JSONL, output folder. Rank 0 writes `tp_errors.json`, `run_a.json`
(+ `weights_a.safetensors`) and `run_b.json` (+ `weights_b.safetensors`) for the pytest side to check.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from runtime.config import build_config
from runtime.distributed import destroy, init_distributed, init_tensor_parallel


def tp_vs_hf(model_dir: str) -> dict[str, float]:
    from transformers import AutoModelForCausalLM

    from speculative.parallel.tp_target import TPTargetBackend
    from speculative.target.backend import HFTargetBackend

    tp = TPTargetBackend(model_dir)
    hf = HFTargetBackend(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32))
    gen = torch.Generator().manual_seed(0)  # same inputs on both ranks (TP needs identical batches)
    ids = torch.randint(0, tp.config.vocab_size, (3, 11), generator=gen)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False
    t2d = torch.zeros(tp.config.vocab_size, dtype=torch.bool)
    t2d[torch.randperm(tp.config.vocab_size, generator=gen)[:97]] = True  # uneven across vocab shards
    a, b = tp.forward(ids, mask, t2d), hf.forward(ids, mask, t2d)
    errs = {k: float((getattr(a, k)[mask] - getattr(b, k)[mask]).abs().max())
            for k in ("aux_hidden", "last_hidden", "target_probs")}
    errs["embedding"] = float((tp.embedding_weight() - hf.embedding_weight()).abs().max())
    return errs


def main(model_dir: str, chats: str, out: str) -> None:
    from speculative.parallel.build import build_dist_training
    from speculative.parallel.config import DistTrainConfig

    info = init_distributed()
    init_tensor_parallel(2, seed=0)
    out_dir = Path(out)
    errs = tp_vs_hf(model_dir)

    def config(run: str, **kw):
        return build_config(DistTrainConfig, {
            "data": {"source": chats, "limit": None, "max_length": 64, "draft_vocab_size": 64},
            "target": {"model": model_dir}, "target_kind": "tp", "parallel": {"tp": 2}, "max_steps": 3,
            "ttt_length": 3, "optim": {"batch_size": 1, "grad_accum": 1, "warmup_steps": 0},
            "tensorboard": False, "export": False, "ckpt_every": 100, "out_dir": str(out_dir / run), **kw})

    trainer_a = build_dist_training(config("a"))  # 3 uninterrupted steps
    run_a = trainer_a.train()
    weights_a = trainer_a.full_draft_weights()
    first = build_dist_training(config("b"))  # 2 steps + checkpoint, then a fresh trainer resumes
    first.train_step()
    first.train_step()
    first.save()
    del first
    second = build_dist_training(config("b"))
    run_b = second.train()
    weights_b = second.full_draft_weights()
    exported = second.export_draft()  # collective; an unsharded Eagle3Draft on rank 0
    if info.rank == 0:
        for k, v in exported.trainable_state_dict().items():
            assert torch.equal(v, weights_b[k]), k
        (out_dir / "tp_errors.json").write_text(json.dumps(errs))
        (out_dir / "run_a.json").write_text(json.dumps(run_a))
        (out_dir / "run_b.json").write_text(json.dumps(run_b))
        save_file(weights_a, str(out_dir / "weights_a.safetensors"))
        save_file(weights_b, str(out_dir / "weights_b.safetensors"))
    destroy()


if __name__ == "__main__":
    main(*sys.argv[1:4])
