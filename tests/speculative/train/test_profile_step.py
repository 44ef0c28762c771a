"""`speculative profile-step`: one real Eagle3Draft training step at SmolLM2 shapes, timed per forward piece."""

from __future__ import annotations

import json

import pytest


def test_profile_step_times_every_piece_of_the_real_draft(capsys):
    import speculative.train.ttt as ttt
    from runtime.ops import soft_cross_entropy
    from speculative.__main__ import main

    assert main(["profile-step", "tokens=16", "vocab=256", "ttt_steps=2"]) == 0
    res = json.loads(capsys.readouterr().out)
    sections = res["forward_ms_by_section"]
    assert set(sections) == {"fc", "rmsnorm_in+concat", "qkv+rope", "ttt_attention(rope+mask+sdpa)", "o_proj",
                             "rmsnorm_post", "mlp", "residual_adds", "rmsnorm_out", "lm_head+soft_ce"}
    for name in ("fc", "qkv+rope", "mlp", "lm_head+soft_ce", "rmsnorm_out"):
        assert sections[name] > 0, name
    assert res["top_ops_self_ms"] and res["total_self_ms"] > 0
    assert (res["tokens"], res["vocab"], res["ttt_steps"], res["ops_impl"]) == (16, 256, 2, "reference")
    assert ttt.soft_cross_entropy is soft_cross_entropy  # the labels are gone after the profile


def test_labels_are_removed_from_the_draft():
    import torch

    from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig
    from speculative.train.profile_step import SMOLLM2_135M, labelled_pieces

    draft = Eagle3Draft(Eagle3DraftConfig.from_target(SMOLLM2_135M, 64))
    with labelled_pieces(draft):
        assert "project_aux" in vars(draft) and "forward" in vars(draft.norm)
        out = draft.project_aux(torch.zeros(1, 2, 3 * 576))
    assert out.shape == (1, 2, 576)
    assert "project_aux" not in vars(draft) and "forward" not in vars(draft.norm)
    assert "qkv" not in vars(draft.midlayer.self_attn)


@pytest.mark.parametrize("bad", ["tokens=2", "vocab=0", "ops_impl=fast"])
def test_profile_step_refuses_bad_settings(bad, capsys):
    from speculative.__main__ import main

    assert main(["profile-step", bad]) == 2
