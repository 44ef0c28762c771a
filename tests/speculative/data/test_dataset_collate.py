"""collate / BatchSchedule padding."""

import pytest
import torch

from speculative.data.dataset import BatchSchedule, Example, collate


def _ex(n: int) -> Example:
    return Example(torch.arange(1, n + 1), torch.ones(n, dtype=torch.bool))


def test_collate_pads_to_the_longest_rounded_up_to_the_multiple():
    b = collate([_ex(5), _ex(70)], pad_id=9, pad_multiple=64)
    assert b.input_ids.shape == (2, 128)
    assert int(b.attention_mask[0].sum()) == 5 and int(b.attention_mask[1].sum()) == 70
    assert bool((b.input_ids[1, 70:] == 9).all()) and not bool(b.loss_mask[1, 70:].any())
    assert collate([_ex(5), _ex(70)]).input_ids.shape == (2, 70)  # default: no rounding
    assert collate([_ex(64)], pad_multiple=64).input_ids.shape == (1, 64)  # already a multiple


def test_schedule_passes_the_multiple_and_refuses_a_bad_one():
    sched = BatchSchedule([_ex(3), _ex(17)], batch_size=2, seed=0, pad_multiple=16)
    assert sched.batch(0).input_ids.shape == (2, 32)
    with pytest.raises(ValueError, match="pad_multiple"):
        BatchSchedule([_ex(3)], batch_size=1, seed=0, pad_multiple=0)
