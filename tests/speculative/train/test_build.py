"""Run assembly: the fixed fc-input scale measured from the target, and starting from an export."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from speculative.data.dataset import BatchSchedule, Example
from speculative.export import export_draft
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetBackend, TargetOutputs
from speculative.train.build import estimate_aux_scale, init_from_export
from tests.speculative.conftest import tiny_draft_config, tiny_draft_with_vocab

LAYER_RMS = torch.tensor([2.0, 10.0, 50.0])


class ScaledTarget(TargetBackend):
    """Aux layers with known RMS; position 0 carries a huge outlier (as SmolLM2's first token does)."""

    def __init__(self, hidden=8):
        self.config = SimpleNamespace(hidden_size=hidden, vocab_size=80)
        self.aux_layer_ids = [2, 4, 5]
        self.gen = torch.Generator().manual_seed(0)

    def embedding_weight(self):
        return torch.zeros(80, self.config.hidden_size)

    def forward(self, input_ids, attention_mask, t2d):
        b, t = input_ids.shape
        h = self.config.hidden_size
        aux = torch.randn(b, t, 3, h, generator=self.gen) * LAYER_RMS[None, None, :, None]
        aux[:, 0] *= 1000
        aux = aux.view(b, t, 3 * h)
        return TargetOutputs(aux, torch.zeros(b, t, h), torch.zeros(b, t, 1))


def test_aux_scale_is_inverse_layer_rms_without_position_zero():
    examples = [Example(torch.randint(0, 80, (64,)), torch.ones(64, dtype=torch.bool)) for _ in range(8)]
    scale = estimate_aux_scale(ScaledTarget(), BatchSchedule(examples, 2, seed=0), n_batches=4)
    assert scale.shape == (24,)
    torch.testing.assert_close(scale.view(3, 8)[:, 0], 1 / LAYER_RMS, rtol=0.08, atol=0)
    assert torch.equal(scale.view(3, 8), scale.view(3, 8)[:, :1].expand(3, 8))  # one value per layer


def test_init_from_export_keeps_the_function(tmp_path):
    src = tiny_draft_with_vocab()
    src.set_aux_scale(torch.rand(72) + 0.5)
    export_draft(src, tmp_path / "exp")
    dst = Eagle3Draft(tiny_draft_config(), embed_weight=src.embed_tokens.weight.detach().clone())
    dst.set_aux_scale(torch.rand(72) + 0.5)  # this run's own measured scale
    before = dst.aux_scale.clone()
    init_from_export(dst, str(tmp_path / "exp"))
    assert torch.equal(dst.aux_scale, before) and torch.equal(dst.t2d, src.t2d)
    aux, ids, pos = torch.randn(1, 5, 72), torch.randint(0, 80, (1, 5)), torch.arange(5)[None]
    with torch.no_grad():
        torch.testing.assert_close(dst.logits(dst(ids, dst.project_aux(aux), pos)),
                                   src.logits(src(ids, src.project_aux(aux), pos)), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="draft vocab"):
        init_from_export(Eagle3Draft(tiny_draft_config(draft_vocab_size=30)), str(tmp_path / "exp"))


def test_head_init_from_target_scores_the_draft_vocab_as_the_target_head_does():
    """lm_head = the target's head rows of the draft vocab, norm = its final norm: the draft's logits of a
    hidden state h equal the target's full-vocab logits of h at the draft-vocab ids."""
    draft = tiny_draft_with_vocab()
    head, norm = torch.randn(80, 32), torch.rand(32) + 0.5
    draft.init_head_from_target(head, norm)
    h = torch.randn(3, 32)
    normed = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + draft.config.rms_norm_eps) * norm
    with torch.no_grad():
        torch.testing.assert_close(draft.logits(h), (normed @ head.t())[:, draft.t2d], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="target head"):
        draft.init_head_from_target(torch.randn(80, 16), norm)


@pytest.mark.parametrize("head_init", ["target", "random"])
def test_assembled_draft_head_follows_head_init(spec_tiny_target_dir, tmp_path, monkeypatch, head_init):
    from runtime.config import load_config
    from speculative.train.build import build_training, target_output_side
    from speculative.train.config import DraftTrainConfig
    from tests.speculative.train.test_resume import CONFIG, write_data

    monkeypatch.setenv("LLMSYS_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config(DraftTrainConfig, CONFIG, [f"target.model={spec_tiny_target_dir}", f"head_init={head_init}",
                                            f"data.source={write_data(tmp_path / 'd.jsonl')}", f"out_dir={tmp_path}"])
    draft = build_training(cfg).draft
    head, norm = target_output_side(str(spec_tiny_target_dir))
    same = torch.equal(draft.lm_head.weight, head[draft.t2d]) and torch.equal(draft.norm.weight, norm)
    assert same == (head_init == "target")


def test_narrowed_draft_mlp_trains_exports_and_reloads_at_its_width(spec_tiny_target_dir, tmp_path):
    """`draft_intermediate_size` narrows the draft MLP (the size lever for wide targets); the export CLI reads the
    width off the checkpoint's weights, so the vLLM-format config and the weights agree."""
    import json
    import os
    import subprocess
    import sys

    from runtime.paths import repo_root
    from speculative.__main__ import main as speculative_main
    from speculative.export import load_exported_draft
    from tests.speculative.train.test_resume import CONFIG, write_data

    env = {**os.environ, "OMP_NUM_THREADS": "1", "LLMSYS_THREADS": "1", "LLMSYS_NO_PROGRESS": "1",
           "PYTHONPATH": str(repo_root()), "LLMSYS_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "speculative", "train", "--config", str(CONFIG),
                           f"target.model={spec_tiny_target_dir}", f"data.source={write_data(tmp_path / 'd.jsonl')}",
                           f"out_dir={out}", "max_steps=3", "draft_intermediate_size=24", "export=true"],
                          cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    target_width = json.loads((spec_tiny_target_dir / "config.json").read_text())["intermediate_size"]
    assert target_width != 24
    assert speculative_main(["export", f"run_dir={out}", f"out={tmp_path / 'exp'}"]) == 0
    for folder in (out / "export", tmp_path / "exp"):
        assert json.loads((folder / "config.json").read_text())["intermediate_size"] == 24
        draft = load_exported_draft(folder)
        assert draft.config.intermediate_size == 24
        assert draft.midlayer.mlp.gate_proj.weight.shape[0] == 24
