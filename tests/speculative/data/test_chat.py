"""Golden assistant-mask tests on fixed conversations, SmolLM2 (ChatML) and Qwen2.5 templates."""

from __future__ import annotations

import copy

import pytest

from speculative.data.chat import render_conversation

CONV = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "2+2 equals 4."},
]

# Qwen2.5-Instruct's chat template (tool branches removed), applied with the SmolLM2 tokenizer: the
# masking only depends on the rendered text and the <|im_end|> token, which both vocabularies share.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# A template whose header depends on the whole conversation (like date/tool headers): rendering a
# prefix of the conversation is then not a prefix of the full rendering, so the content-search
# fallback must find the spans.
REWRITING_TEMPLATE = (
    "{{- '<|im_start|>system\\nA conversation of ' + (messages|length|string) + ' turns<|im_end|>\\n' }}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture
def tok(smollm2_tokenizer):
    return copy.deepcopy(smollm2_tokenizer)


def masked_pieces(tok, r):
    return [tok.decode([int(i)]) for i in r.input_ids[r.loss_mask]]


def test_smollm2_chatml_golden(tok):
    r = render_conversation(tok, CONV)
    assert r.text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n2+2 equals 4.<|im_end|>\n")
    assert tok.decode(r.input_ids[r.loss_mask]) == "Hello! How can I help?<|im_end|>2+2 equals 4.<|im_end|>"
    assert masked_pieces(tok, r)[:8] == ["Hello", "!", " How", " can", " I", " help", "?", "<|im_end|>"]
    assert int(r.loss_mask.sum()) == 8 + len(tok("2+2 equals 4.", add_special_tokens=False)["input_ids"]) + 1
    # nothing of the header or the newline after <|im_end|> is in the loss
    ids = r.input_ids.tolist()
    first = r.loss_mask.tolist().index(True)
    assert tok.decode(ids[:first]).endswith("<|im_start|>assistant\n")
    nxt = r.loss_mask.tolist().index(False, first)
    assert tok.decode(ids[nxt:nxt + 1]) == "\n"


def test_qwen25_template_golden(tok):
    tok.chat_template = QWEN25_TEMPLATE
    r = render_conversation(tok, CONV)
    assert r.text.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert tok.decode(r.input_ids[r.loss_mask]) == "Hello! How can I help?<|im_end|>2+2 equals 4.<|im_end|>"


def test_rewriting_template_uses_content_fallback(tok):
    tok.chat_template = REWRITING_TEMPLATE
    r = render_conversation(tok, CONV)
    assert "A conversation of 4 turns" in r.text
    assert tok.decode(r.input_ids[r.loss_mask]) == "Hello! How can I help?<|im_end|>2+2 equals 4.<|im_end|>"


def test_last_turn_only_and_truncation(tok):
    r = render_conversation(tok, CONV, last_turn_only=True)
    assert tok.decode(r.input_ids[r.loss_mask]) == "2+2 equals 4.<|im_end|>"
    full = render_conversation(tok, CONV)
    cut = render_conversation(tok, CONV, max_length=40)
    assert len(cut.input_ids) == 40
    assert cut.loss_mask.tolist() == full.loss_mask[:40].tolist()


def test_truncation_keeps_the_last_window_with_assistant_tokens(tok):
    """A prompt longer than max_length would leave no loss tokens in the head window: keep the window
    that ends at the last assistant token instead of dropping the example."""
    conv = [{"role": "user", "content": "word " * 120}, {"role": "assistant", "content": "The short answer."}]
    full = render_conversation(tok, conv)
    cut = render_conversation(tok, conv, max_length=32)
    last = int(full.loss_mask.nonzero()[-1]) + 1
    assert len(cut.input_ids) == 32
    assert cut.input_ids.tolist() == full.input_ids[last - 32:last].tolist()
    assert cut.loss_mask.tolist() == full.loss_mask[last - 32:last].tolist()
    assert tok.decode(cut.input_ids[cut.loss_mask]) == "The short answer.<|im_end|>"
