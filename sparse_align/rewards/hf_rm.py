"""Any HF sequence-classification reward model (e.g. on GPU machines); reward = logit of label 0."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from runtime.device import pick_device
from sparse_align.rewards.base import RewardModel


class HFRewardModel(RewardModel):
    def __init__(self, folder: str, *, device: str | None = None, batch_size: int = 8):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = pick_device(device)
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self.device).eval()
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
            self.model.config.pad_token_id = self.tok.pad_token_id
        self.batch_size = batch_size
        self.name = f"hf-rm[{folder}]"

    def _text(self, prompt: str, response: str) -> str:
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": prompt},
                                                 {"role": "assistant", "content": response}], tokenize=False)
        return f"{prompt}\n{response}"

    @torch.inference_mode()
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        self._check(prompts, responses)
        texts = [self._text(p, r) for p, r in zip(prompts, responses)]
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tok(texts[i:i + self.batch_size], return_tensors="pt", padding=True, truncation=True)
            logits = self.model(**enc.to(self.device)).logits
            out.extend(logits[:, 0].float().tolist())
        return out
