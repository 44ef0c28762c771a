"""`python -m sparse_align demo [threads=N]`: SIA on the real SmolLM2 in about two minutes on a CPU.

Uses the value head shipped in sparse_align/assets (sha256-checked; `python -m sparse_align export-head`
writes it from a trained run), else the value model of the last `make sparse_align-eval` run, else distils a toy
one from VADER on 4 prompts (it shows the pipeline, not a good value model). Then it
samples one held-out prompt with base sampling and with SIA, marking the steered junction tokens.
"""

from __future__ import annotations

import torch
from pydantic import Field

from runtime.assets import load_tokenizer
from runtime.config import StrictModel, config_from_cli
from runtime.device import set_threads
from runtime.paths import cache_dir
from sparse_align.config import DistillConfig, SteerConfig, ValueModelConfig, ValueTrainConfig
from sparse_align.eval.tasks import split_prompts
from sparse_align.rewards import make_reward
from sparse_align.steer.calibrate import tau_for_rate
from sparse_align.steer.decode import generate_steered, render_prompt
from sparse_align.value.data import generate_distill_data
from sparse_align.value.model import ValueModel, load_backbone
from sparse_align.value.ship import SHIPPED, load_shipped
from sparse_align.value.train import train_value_head


class DemoConfig(StrictModel):
    threads: int = Field(1, ge=1)  # torch threads (1: on a shared CPU more threads spin and run slower)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(DemoConfig, argv, description=__doc__, example="threads=2")
    set_threads(cfg.threads)
    model, tok = load_backbone("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
    trained = cache_dir("sia/full") / "value_model"
    shipped = load_shipped(model)
    if shipped is not None:
        print(f"using the shipped value head ({SHIPPED})")
        vm = shipped
    elif (trained / "value_config.json").is_file():
        print(f"using the value model from {trained}")
        vm = ValueModel.load(trained, backbone=model)
    else:
        work = cache_dir("sia/demo")
        print(f"no trained value model yet: distilling a toy one from VADER into {work}")
        rows = generate_distill_data(model, tok, split_prompts("sentiment", "train", 4), make_reward("vader"),
                                     DistillConfig(num_prompts=4, samples_per_prompt=4, max_new_tokens=16),
                                     work / "distill.jsonl")
        vm = ValueModel.build(ValueModelConfig(), backbone=model)
        print("value head:", train_value_head(vm, rows, ValueTrainConfig(epochs=20, batch_tokens=64), work / "train"))
    prompt = split_prompts("sentiment", "eval", 1)[0]
    ids = render_prompt(tok, prompt)
    base = generate_steered(model, tok, ids, SteerConfig(mode="base", max_new_tokens=24),
                            generator=torch.Generator().manual_seed(0))
    tau = tau_for_rate([r.entropy for r in base.records], 0.3)
    sia = generate_steered(model, tok, ids, SteerConfig(mode="sia", tau=tau, max_new_tokens=24), vm,
                           generator=torch.Generator().manual_seed(0))
    vader = make_reward("vader")
    print(f"\nprompt: {prompt}\ntau for ~30% steering: {tau:.3f} nats (top-10 entropy)")
    for name, g in (("base", base), ("SIA", sia)):
        marked = "".join(f"[{tok.decode([r.token_id])}]" if r.steered else tok.decode([r.token_id])
                         for r in g.records)
        print(f"\n{name}: VADER {vader.score([prompt], [g.text])[0]:+.3f}, steered {g.steered_fraction:.0%}, "
              f"value calls {g.value_calls}, {g.wall_s:.1f}s\n  {marked}")
    print("\n[...] = tokens where SIA steered (junction entropy >= tau)")
    return 0
