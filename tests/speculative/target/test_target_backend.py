"""Target backend: aux-layer convention, restricted probabilities vs the full-vocab reference."""

from __future__ import annotations

import pytest
import torch

from speculative.target.backend import HFTargetBackend
from speculative.target.layers import default_aux_layer_ids, resolve_aux_layer_ids
from tests.conftest import make_tiny_llama


def test_default_aux_ids_follow_vllm_convention():
    assert default_aux_layer_ids(30) == [2, 15, 27]  # SmolLM2: after layers 1, 14, 26 (0-based)
    assert resolve_aux_layer_ids(8, None) == [2, 4, 5]
    with pytest.raises(ValueError):
        resolve_aux_layer_ids(8, [2, 4, 8])  # id L would be HF's final normed state
    with pytest.raises(ValueError):
        resolve_aux_layer_ids(8, [2, 4])


def test_hf_backend_matches_manual_layer_walk():
    model = make_tiny_llama(vocab_size=96, layers=8)
    backend = HFTargetBackend(model)
    ids = torch.randint(0, 96, (2, 9))
    att = torch.ones(2, 9, dtype=torch.bool)
    t2d = torch.zeros(96, dtype=torch.bool)
    t2d[torch.tensor([1, 5, 6, 40, 95])] = True
    out = backend.forward(ids, att, t2d)

    # reference: residual stream captured with forward hooks on the decoder layers (0-based l -> id l+1)
    captured = {}
    hooks = [layer.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(i + 1, o[0] if isinstance(o, tuple) else o))
             for i, layer in enumerate(model.model.layers)]
    with torch.no_grad():
        full = model(ids).logits
    for h in hooks:
        h.remove()
    ref_aux = torch.cat([captured[k] for k in (2, 4, 5)], -1)
    torch.testing.assert_close(out.aux_hidden, ref_aux, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.target_probs, torch.softmax(full[..., t2d], -1), atol=1e-5, rtol=1e-5)
    assert out.target_probs.shape == (2, 9, 5)
