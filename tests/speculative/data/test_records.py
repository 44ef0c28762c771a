"""Malformed records are skipped and counted by reason, never crash."""

from __future__ import annotations

import json

from speculative.data.dataset import tokenize_conversations
from speculative.data.records import SkipCounter, load_conversations

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}
SHAREGPT = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "an answer"}]}


def test_jsonl_malformed_records_counted(tmp_path):
    lines = [
        json.dumps(GOOD), json.dumps(SHAREGPT),
        "{not json",
        json.dumps({"messages": []}),
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
        json.dumps({"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}),
        json.dumps({"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "y"}]}),
        json.dumps({"messages": [{"role": "assistant", "content": "first"}, {"role": "user", "content": "y"}]}),
        json.dumps({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]}),
        json.dumps({"messages": [{"role": "user", "content": "bad \ud800 surrogate"},
                                 {"role": "assistant", "content": "y"}]}),
        json.dumps([1, 2]),
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "cont."},
                                 {"role": "user", "content": "next"}, {"role": "assistant", "content": "kept"}]}),
    ]
    path = tmp_path / "data.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf8\n")
    convs, skips = load_conversations(str(path))
    # a continuation chunk loses only its leading assistant turn (SpecForge's rule), not the record
    cont = [{"role": "system", "content": "s"}, {"role": "user", "content": "next"},
            {"role": "assistant", "content": "kept"}]
    assert convs == [GOOD["messages"], [{"role": "user", "content": "q"}, {"role": "assistant", "content": "an answer"}],
                     cont]
    assert dict(skips) == {"invalid_json": 1, "no_messages": 2, "no_assistant": 2, "unknown_role": 1,
                           "empty_content": 1, "bad_message": 1, "not_utf8": 2}
    assert skips.total == 10


def test_sharegpt_asset_subset_tokenizes(smollm2_tokenizer):
    convs, skips = load_conversations("sharegpt", limit=20)
    assert len(convs) == 20
    skips2 = SkipCounter()
    ex = tokenize_conversations(smollm2_tokenizer, convs, max_length=256, skips=skips2)
    assert len(ex) + skips2.total == 20 and len(ex) > 5
    for e in ex:
        assert len(e.input_ids) <= 256 and e.loss_mask.sum() >= 2
