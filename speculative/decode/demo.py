"""`python -m speculative decode-demo [draft_dir=/path/to/export] [k=v ...]`: speculative decoding on the real
SmolLM2-135M-Instruct, timed honestly (~1-2 min on a 2-core CPU).

Every engine runs once untimed first (allocations, kernel set-up), then on each prompt AR and each
speculative method run back to back on the same target. Printed per method: identical output, tau, round
cost and the speed-up together (speed-up ~= tau / round cost; a speed-up above tau means a timing artifact).
The draft is the EAGLE-3 export at `draft_dir`; by default the shipped one (drafts/smollm2-135m-eagle3,
checked against its SHA256SUMS), and where that is missing, or with draft_dir=early-exit, an untrained
early-exit draft (the target's first 8 layers + its head, weights shared): tau ~1 there, so only prompt
lookup can win. Two of the three default prompts invite copying (code to annotate, a
sentence to repeat), where prompt lookup shines; `prompts='["...", "..."]'` measures your own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from runtime.config import StrictModel, config_from_cli
from speculative.decode import DecodeConfig, HybridDrafter, LMDrafter, LookupDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.config import LookupConfig

PROMPTS = [
    "List three primary colors.",
    "Add type hints and a docstring to this function:\n\n```python\ndef area(width, height):\n"
    "    if width < 0 or height < 0:\n        raise ValueError('negative size')\n    return width * height\n```",
    "Repeat this sentence three times: The quick brown fox jumps over the lazy dog.",
]


class DecodeDemoConfig(StrictModel):
    draft_dir: str | None = None  # an exported EAGLE-3 draft; None = the shipped one; "early-exit" = untrained
    methods: list[Literal["model", "lookup", "hybrid"]] = ["model", "lookup", "hybrid"]
    prompts: list[str] = Field(default_factory=lambda: list(PROMPTS), min_length=1)
    max_new_tokens: int = Field(64, ge=1)
    decode: DecodeConfig | None = None  # None: chain 3 for EAGLE-3, a small tree for the early-exit draft
    lookup: LookupConfig = LookupConfig()
    # hybrid: drafted nodes verified per round (most confident first; 7 + the root = the small-M kernel's 8
    # rows) and the confidence cut-off of either source (the side-by-side run's setting, decode/README.md)
    max_tree_tokens: int | None = 7
    hybrid_min_draft_prob: float = Field(0.2, ge=0.0, le=1.0)
    threads: int | None = None


SHIPPED_DRAFT = "smollm2-135m-eagle3"
EARLY_EXIT = "early-exit"


def resolve_draft_dir(draft_dir: str | None) -> str | None:
    """The export to load: `draft_dir` itself, the shipped draft for None (when this checkout has it intact,
    else None with a warning), None for "early-exit"."""
    if draft_dir == EARLY_EXIT:
        return None
    if draft_dir is not None:
        return draft_dir
    from runtime.assets.drafts import draft_dir as shipped_dir
    from runtime.assets.drafts import draft_status

    status = draft_status(SHIPPED_DRAFT)
    if status != "ok":
        print(f"shipped draft unavailable ({status}): using the untrained early-exit draft")
        return None
    return str(shipped_dir(SHIPPED_DRAFT, verify=False))


def _model_drafter(cfg: DecodeDemoConfig, model: torch.nn.Module):
    """(runner, drafter factory, label, decode) for the configured draft."""
    from speculative.decode.drafters import early_exit_draft

    draft_dir = resolve_draft_dir(cfg.draft_dir)
    if draft_dir is not None:
        from speculative.decode.eagle3_drafter import Eagle3Drafter
        from speculative.export import load_exported_draft

        if not (Path(draft_dir) / "config.json").is_file():
            raise FileNotFoundError(f"no exported EAGLE-3 draft at {draft_dir} (no config.json)")
        draft = load_exported_draft(draft_dir, embed_weight=model.get_input_embeddings().weight.detach())
        decode = cfg.decode or DecodeConfig(mode="chain", depth=3)
        return TargetRunner(model, draft.config.aux_layer_ids), lambda: Eagle3Drafter(draft), \
            f"EAGLE-3 {draft_dir}", decode
    draft = early_exit_draft(model)
    decode = cfg.decode or DecodeConfig(mode="tree", depth=4, topk=2, num_draft_tokens=6)
    return TargetRunner(model), lambda: LMDrafter(draft), \
        "untrained early-exit draft (first 8 layers + head; pass draft_dir=<export> for a trained EAGLE-3)", decode


def build_engines(cfg: DecodeDemoConfig, model: torch.nn.Module, eos: list[int]) -> tuple[dict[str, SpeculativeEngine], str]:
    runner, make_model, label, decode = _model_drafter(cfg, model)
    decode = decode.model_copy(update={"max_new_tokens": cfg.max_new_tokens, "lookup": cfg.lookup})
    engines = {}
    for name in cfg.methods:
        if name == "model":
            engines[name] = SpeculativeEngine(runner, make_model(), decode, eos)
        elif name == "lookup":
            engines[name] = SpeculativeEngine(runner, LookupDrafter(cfg.lookup), decode, eos)
        else:
            hyb = decode.model_copy(update={"max_tree_tokens": cfg.max_tree_tokens,
                                            "min_draft_prob": cfg.hybrid_min_draft_prob})
            engines[name] = SpeculativeEngine(runner, HybridDrafter(make_model(), LookupDrafter(cfg.lookup)), hyb, eos)
    return engines, f"{label}; {decode.mode} depth {decode.depth}"


def run(cfg: DecodeDemoConfig) -> dict[str, dict]:
    from runtime.assets import load_model, load_tokenizer
    from runtime.device import set_threads
    from speculative.evaluate.metrics import summarize
    from speculative.evaluate.run import encode, eos_ids, warm_up

    set_threads(cfg.threads)
    model, tok = load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
    engines, label = build_engines(cfg, model, eos_ids(model, tok))
    first, *rest = engines.values()
    prompts = [encode(tok, [{"role": "user", "content": p}]) for p in cfg.prompts]
    warm_up(first, dict(zip(list(engines)[1:], rest)), prompts[0], n=8)
    ar, spec, same, texts = [], {k: [] for k in engines}, dict.fromkeys(engines, True), []
    for ids in prompts:  # back to back: AR, then every method, on the same prompt
        base = first.generate_autoregressive(ids)
        ar.append(base.stats)
        texts.append(tok.decode(base.token_ids, skip_special_tokens=True))
        for name, eng in engines.items():
            res = eng.generate(ids)
            spec[name].append(res.stats)
            same[name] &= res.token_ids == base.token_ids
    print(f"draft: {label}; {len(prompts)} prompts, {cfg.max_new_tokens} new tokens, warm-up done before timing")
    print("AR output (prompt 1):", texts[0][:300].replace("\n", " "))
    out = {}
    for name in engines:
        s = summarize(spec[name], ar, 1)
        src = s["sources"]["accepted"]
        out[name] = {**s, "identical": same[name]}
        print(f"{name:>7}: identical to AR {same[name]}; tau {s['tau']:.2f}, round cost {s['round_cost_ar_steps']:.2f}"
              f" AR steps -> {s['spec_tokens_per_s']:.1f} vs AR {s['ar_tokens_per_s']:.1f} tok/s = "
              f"{s['speedup']:.2f}x (accepted from model/lookup/both: {src['model']}/{src['lookup']}/{src['both']})")
    return out


def main(argv: list[str] | None = None) -> int:
    run(config_from_cli(DecodeDemoConfig, argv, description=__doc__, example="draft_dir=/path/to/export threads=2"))
    return 0
