"""The cached candidate forward must equal recomputing prefix + candidate from scratch."""

import pytest
import torch

from sparse_align.steer.cached_lm import CachedLM


def _full(model, ids):
    out = model(torch.tensor([ids]), output_hidden_states=True)
    return out.logits[0, -1], out.hidden_states[-1][0, -1]


@pytest.mark.parametrize("which", ["tiny_model", "smollm2_model"])
def test_branch_equals_full_recompute(which, request):
    model = request.getfixturevalue(which)
    prefix = [1, 9690, 198, 2683, 314, 253, 1345, 30, 2, 198]
    cands = [28, 314, 1345, 9690, 2683]
    lm = CachedLM(model)
    lm.append(prefix)
    logits, hidden = lm.branch(torch.tensor(cands))
    for j, c in enumerate(cands):
        ref_logits, ref_hidden = _full(model, prefix + [c])
        assert torch.allclose(hidden[j], ref_hidden, atol=1e-4), f"candidate {c}"
        assert torch.allclose(logits[j], ref_logits, atol=1e-3)
    lm.drop_branch()
    assert lm.cache.get_seq_length() == len(prefix)
    # the prefix is never recomputed: one forward for the prefix, one for all K candidates
    assert lm.forwards == 2


def test_commit_keeps_candidate_kv(tiny_model):
    prefix = [1, 5, 6, 7]
    lm = CachedLM(tiny_model)
    lm.append(prefix)
    lm.branch(torch.tensor([11, 12, 13]))
    lm.commit(1)
    assert lm.length == 5 and lm.cache.get_seq_length() == 5
    logits, _ = lm.append([40])
    ref, _ = _full(tiny_model, prefix + [12, 40])
    assert torch.allclose(logits, ref, atol=1e-4)
    with pytest.raises(IndexError):
        lm.commit(0)  # no pending branch any more
