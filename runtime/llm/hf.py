"""HF transformers backend: a local causal LM (by default the embedded SmolLM2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from runtime.llm.base import (
    Generation,
    LLMBackend,
    Prompt,
    SamplingParams,
    TokenLogprobs,
    truncate_at_stop,
)
from runtime.logging import get_logger


class HFBackend(LLMBackend):
    name = "hf"
    _warned_json_schema = False  # SamplingParams.json_schema is not enforced here; said once per process

    def __init__(self, model: Any = "smollm2-135m-instruct", tokenizer: Any = None, *, device: Any = None,
                 dtype: Any = None, batch_size: int = 8, small_m_kernel: bool | None = None):
        """`small_m_kernel`: route the model's linears through runtime.ops' small-M kernel (decode steps of
        <= 16 rows on fp32 CPU; same outputs within fp32 rounding, see runtime/ops/README.md). None = only for
        a model this backend loads itself (routing patches the model's nn.Linear modules in place)."""
        from runtime.assets import load_model, load_tokenizer

        owned = isinstance(model, str)
        if owned:
            tokenizer = tokenizer or load_tokenizer(model)
            model = load_model(model, dtype=dtype, device=device)
        if tokenizer is None:
            raise ValueError("pass a tokenizer together with a model object")
        param = next(model.parameters())
        if (small_m_kernel if small_m_kernel is not None else owned) and param.device.type == "cpu" \
                and param.dtype == torch.float32:
            from runtime.ops import use_small_m_linears

            use_small_m_linears(model)
        self.model = model.eval()
        self._tok = tokenizer
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token
        self.batch_size = batch_size

    @property
    def tokenizer(self) -> Any:
        return self._tok

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self._tok.eos_token_id is not None and self._tok.eos_token_id not in ids:
            ids.append(self._tok.eos_token_id)
        return ids

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[Generation]:
        params = params or SamplingParams()
        if params.json_schema is not None and not HFBackend._warned_json_schema:
            HFBackend._warned_json_schema = True
            get_logger("runtime.llm").info("hf backend: json_schema is not enforced (no guided decoding); "
                                           "the caller validates the output")
        texts = [self.render(p) for p in prompts]
        out: list[Generation] = []
        eos = self._eos_ids()
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            self._tok.padding_side = "left"
            enc = self._tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            gen_kw: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "eos_token_id": eos,
                                      "pad_token_id": self._tok.pad_token_id}
            if params.greedy:
                gen_kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                gen_kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p,
                              top_k=params.top_k or None)
                if params.seed is not None:
                    torch.manual_seed(params.seed + start)
            seqs = self.model.generate(**enc, **gen_kw)
            prompt_len = enc["input_ids"].shape[1]
            for row, mask in zip(seqs, enc["attention_mask"]):
                new = row[prompt_len:].tolist()
                finish = "length"
                for i, t in enumerate(new):
                    if t in eos:
                        new, finish = new[:i], "stop"
                        break
                text = self._tok.decode(new, skip_special_tokens=True)
                text, hit = truncate_at_stop(text, params.stop)
                out.append(Generation(text=text, token_ids=new, finish_reason="stop" if hit else finish,
                                      prompt_tokens=int(mask.sum())))
        return out

    @torch.inference_mode()
    def token_logprobs(self, texts: Sequence[str]) -> list[TokenLogprobs]:
        out = []
        for text in texts:
            ids = self._tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)
            if ids.shape[1] < 2:
                out.append(TokenLogprobs(ids[0].tolist(), []))
                continue
            logits = self.model(ids).logits[0, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            out.append(TokenLogprobs(ids[0].tolist(), lp.tolist()))
        return out

    @torch.inference_mode()
    def hidden_states(self, input_ids: Any, layers: Sequence[int], attention_mask: Any = None) -> dict[int, Any]:
        """Residual stream after k layers (k=0: embeddings). k = num_layers is HF's final (normed) state."""
        n = self.model.config.num_hidden_layers
        bad = [k for k in layers if not 0 <= k <= n]
        if bad:
            raise ValueError(f"layer ids {bad} outside [0, {n}]")
        ids = torch.as_tensor(input_ids, device=self.device)
        if ids.dim() == 1:
            ids = ids[None]
        hs = self.model(ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        return {k: hs[k] for k in layers}
