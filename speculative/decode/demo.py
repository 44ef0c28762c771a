"""`python -m speculative.decode.demo`: speculative decoding on the real SmolLM2-135M-Instruct (< 2 min CPU).

Uses the bundle's trained EAGLE-3 draft when it exists; otherwise an early-exit draft (the target's
first 8 layers + its head, weights shared) so the demo needs nothing trained. Prints both outputs (they
are identical: greedy speculative decoding is exact), tau and the wall-clock ratio vs autoregressive.
"""

from __future__ import annotations

from pathlib import Path

import torch

from runtime.assets import load_model, load_tokenizer
from runtime.device import set_threads
from speculative.decode import DecodeConfig, LMDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.drafters import early_exit_draft


def main() -> None:
    from speculative.evaluate.config import default_bundle_dir
    from speculative.evaluate.run import eos_ids

    set_threads()
    model, tok = load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
    export = Path(default_bundle_dir()) / "train" / "export"
    if (export / "config.json").is_file():
        from speculative.decode.eagle3_drafter import Eagle3Drafter
        from speculative.export import load_exported_draft

        draft = load_exported_draft(export, embed_weight=model.get_input_embeddings().weight.detach())
        runner, drafter = TargetRunner(model, draft.config.aux_layer_ids), Eagle3Drafter(draft)
        label = f"EAGLE-3 {export}"
        cfg = DecodeConfig(mode="chain", depth=5, max_new_tokens=64)
    else:
        runner, drafter = TargetRunner(model), LMDrafter(early_exit_draft(model))
        label = "untrained early-exit (first 8 layers + head): expect tau ~1; `make spec-bundle` trains a real draft"
        cfg = DecodeConfig(mode="tree", depth=4, topk=2, num_draft_tokens=6, max_new_tokens=64)
    engine = SpeculativeEngine(runner, drafter, cfg, eos_ids(model, tok))
    text = tok.apply_chat_template([{"role": "user", "content": "List three primary colors."}], tokenize=False,
                                   add_generation_prompt=True)
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    ar = engine.generate_autoregressive(ids)
    sp = engine.generate(ids)
    print(f"draft: {label}; {cfg.mode} depth {cfg.depth}")
    print("autoregressive:", tok.decode(ar.token_ids, skip_special_tokens=True))
    print("speculative:   ", tok.decode(sp.token_ids, skip_special_tokens=True))
    print(f"identical: {sp.token_ids == ar.token_ids}; tau {sp.stats.tau:.2f}; "
          f"{sp.stats.tokens_per_s:.1f} vs {ar.stats.tokens_per_s:.1f} tok/s "
          f"({sp.stats.tokens_per_s / max(ar.stats.tokens_per_s, 1e-9):.2f}x)")


if __name__ == "__main__":
    main()
