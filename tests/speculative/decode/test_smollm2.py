"""Greedy exactness on the real SmolLM2-135M-Instruct (fp32 CPU) against HF's own greedy generate."""

import pytest
import torch

from speculative.decode import DecodeConfig, LMDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.drafters import early_exit_draft
from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.model import Eagle3Draft, Eagle3DraftConfig

PROMPTS = ["What is the capital of France?", "Write a Python function that reverses a string."]
NEW = 20


def _ids(tok, text):
    rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return torch.tensor(tok(rendered, add_special_tokens=False)["input_ids"])


@pytest.fixture(scope="module")
def references(smollm2):
    model, tok = smollm2
    out = []
    for text in PROMPTS:
        ids = _ids(tok, text)
        with torch.no_grad():
            seq = model.generate(ids[None], attention_mask=torch.ones_like(ids)[None], max_new_tokens=NEW,
                                 do_sample=False, eos_token_id=None, pad_token_id=0)
        out.append((ids, seq[0, ids.numel():].tolist()))
    return out


def test_tree_decoding_matches_hf_greedy(smollm2, references):
    model, _ = smollm2
    cfg = DecodeConfig(mode="tree", depth=4, topk=3, num_draft_tokens=10, max_new_tokens=NEW, stop_on_eos=False)
    engine = SpeculativeEngine(TargetRunner(model), LMDrafter(early_exit_draft(model)), cfg)
    accepted = []
    for ids, ref in references:
        res = engine.generate(ids)
        assert res.token_ids == ref
        accepted += res.stats.accepted
    assert sum(accepted) > 0  # the early-exit draft is right sometimes, so acceptance paths were exercised


def test_eagle3_path_matches_hf_greedy(smollm2, references):
    model, _ = smollm2
    cfg = Eagle3DraftConfig.from_target(model.config, draft_vocab_size=4000)
    torch.manual_seed(0)
    draft = Eagle3Draft(cfg, embed_weight=model.get_input_embeddings().weight.detach())
    engine = SpeculativeEngine(TargetRunner(model, cfg.aux_layer_ids), Eagle3Drafter(draft),
                               DecodeConfig(mode="chain", depth=3, max_new_tokens=NEW, stop_on_eos=False))
    ids, ref = references[0]
    assert engine.generate(ids).token_ids == ref


@pytest.mark.slow
def test_demo_times_ar_and_every_method_on_the_same_prompts(smollm2, monkeypatch, capsys):
    import runtime.assets
    from speculative.decode.demo import DecodeDemoConfig, run

    model, tok = smollm2
    monkeypatch.setattr(runtime.assets, "load_model", lambda name: model)
    monkeypatch.setattr(runtime.assets, "load_tokenizer", lambda name: tok)
    prompt = ["Repeat: one two three, one two three, one two three."]
    out = run(DecodeDemoConfig(prompts=prompt, max_new_tokens=12, threads=1, draft_dir="early-exit"))
    assert set(out) == {"model", "lookup", "hybrid"} and all(r["identical"] for r in out.values())
    assert out["lookup"]["sources"]["drafted"]["model"] == 0
    printed = capsys.readouterr().out
    assert "warm-up done before timing" in printed and printed.count("identical to AR True") == 3
    assert "early-exit" in printed  # the untrained draft, said so
    out = run(DecodeDemoConfig(prompts=prompt, max_new_tokens=12, threads=1, methods=["model"]))  # default: shipped
    printed = capsys.readouterr().out
    assert out["model"]["identical"] and "EAGLE-3" in printed and "smollm2-135m-eagle3" in printed
