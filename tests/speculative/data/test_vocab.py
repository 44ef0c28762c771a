"""Draft vocab: top-N loss-masked tokens, d2t/t2d consistency, padding when few tokens, hash cache."""

from __future__ import annotations

import torch

from speculative.data.dataset import Example
from speculative.data.vocab import build_vocab_mapping, cached_vocab_mapping


def ex(ids, mask):
    return Example(torch.tensor(ids), torch.tensor(mask, dtype=torch.bool))


EXAMPLES = [ex([5, 7, 7, 9, 3, 3, 3], [0, 1, 1, 1, 1, 1, 1]), ex([9, 9, 2, 1], [1, 1, 1, 0])]
# masked counts: 3 -> 3, 9 -> 3, 7 -> 2, 2 -> 1 (5 and 1 are not in the loss)


def test_top_n_by_masked_frequency():
    d2t, t2d = build_vocab_mapping(EXAMPLES, target_vocab=12, draft_vocab=3)
    chosen = torch.arange(3) + d2t
    assert chosen.tolist() == [3, 7, 9]  # ties (3, 9) both kept, 7 beats 2; stored ascending
    assert torch.nonzero(t2d)[:, 0].tolist() == [3, 7, 9]
    assert d2t.dtype == torch.int64 and t2d.dtype == torch.bool


def test_fewer_unique_tokens_than_n_fills_unseen_ids():
    d2t, t2d = build_vocab_mapping(EXAMPLES, target_vocab=12, draft_vocab=6)
    chosen = (torch.arange(6) + d2t).tolist()
    assert chosen == [0, 1, 2, 3, 7, 9]  # 4 seen + the 2 smallest unseen (0, 1)
    assert int(t2d.sum()) == 6
    d2t, t2d = build_vocab_mapping(EXAMPLES, target_vocab=12, draft_vocab=50)  # capped at the target vocab
    assert d2t.shape == (12,) and bool(t2d.all()) and not d2t.any()


def test_cache_by_content_hash(tmp_path, monkeypatch, smollm2_tokenizer):
    monkeypatch.setenv("LLMSYS_CACHE_DIR", str(tmp_path))
    a = cached_vocab_mapping(EXAMPLES, smollm2_tokenizer, 12, 3)
    files = list((tmp_path / "speculative" / "vocab").glob("*.safetensors"))
    assert len(files) == 1
    b = cached_vocab_mapping(EXAMPLES, smollm2_tokenizer, 12, 3)
    assert a[2] == b[2] and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = cached_vocab_mapping(EXAMPLES[:1], smollm2_tokenizer, 12, 3)  # other data -> other key
    assert c[2] != a[2]
    assert len(list((tmp_path / "speculative" / "vocab").glob("*.safetensors"))) == 2
