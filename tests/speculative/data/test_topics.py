"""The code subset of a chat corpus: what counts as code, benchmark overlaps dropped, skips counted."""

from __future__ import annotations

import json

import pytest

from speculative.data import topics
from speculative.data.records import load_conversations


def conv(user: str, reply: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]


@pytest.mark.parametrize("reply, code", [
    ("Sure:\n```python\nprint(1)\n```", True),
    ("def add(a, b):\n    x = a + b\n    return x\nprint(add(1, 2))\nimport os", True),  # unfenced, >= 3 code lines
    ("SELECT name FROM users;\nINSERT INTO t VALUES (1);\nCREATE TABLE x (id int);", True),
    ("Paris is the capital of France. It has a long history.", False),
    ("You could print(x) to check.\nThen return.", False),  # prose mentioning code, one code-like line
])
def test_code_conversation_is_a_reply_that_holds_code(reply, code):
    assert topics.is_code_conversation(conv("help", reply)) is code


def test_eval_overlap_matches_the_definition_not_the_word():
    assert topics.eval_overlap(conv("write has_close_elements", "def has_close_elements(numbers):"), ["has_close_elements"])
    assert not topics.eval_overlap(conv("what are close elements?", "has_close_elements is a name"), ["has_close_elements"])


def test_code_topic_filters_a_corpus_and_counts_what_it_drops(tmp_path, monkeypatch):
    rows = [conv("capital?", "Paris."), conv("sort a list", "```python\nsorted(xs)\n```"),
            conv("rounding", "```python\ndef truncate_number(x):\n    return x % 1\n```"),
            conv("loop", "```js\nfor (;;) {}\n```"), conv("poem", "Roses are red.")]
    from runtime import assets

    monkeypatch.setattr(assets, "load_dataset", lambda name, limit=None, **kw: (
        [{"messages": r} for r in rows] if name == "sharegpt" else [{"entry_point": "truncate_number"}]))
    convs, skips = load_conversations("sharegpt:code")
    assert convs == [rows[1], rows[3]]
    assert dict(skips) == {"off_topic": 2, "eval_overlap": 1}
    convs, _ = load_conversations("sharegpt:code", limit=1)
    assert convs == [rows[1]]
    with pytest.raises(FileNotFoundError, match="topics: code"):
        load_conversations("sharegpt:poetry")
    # a JSONL source is never topic-filtered
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows))
    assert len(load_conversations(str(path))[0]) == len(rows)
