"""Tensor-parallel target backends.

`TPTargetBackend`: the megatron TP Llama as a `TargetBackend`; every rank of a TP group must call
`forward` with the same batch. The head is vocab-parallel too: each rank scores only the draft-vocab
rows inside its vocab shard and the pieces are all-gathered (torch.distributed, CPU-safe).
`ResplitTarget`: SpecForge's decoupling. Each rank brings its own data-parallel batch; the TP group
concatenates its `tp` batches, runs the target once on `tp x batch` samples, and each rank keeps the
features of its own rows, so the draft then trains data-parallel on every rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from transformers import AutoConfig

from runtime.assets.models import model_dir
from speculative.parallel.hf_weights import HFWeights
from speculative.parallel.tp_llama import TPLlamaModel
from speculative.target.backend import TargetBackend, TargetOutputs
from speculative.target.layers import resolve_aux_layer_ids


def _tp_state() -> tuple[object, int, int]:
    from megatron.core import parallel_state as ps

    return ps.get_tensor_model_parallel_group(), ps.get_tensor_model_parallel_rank(), \
        ps.get_tensor_model_parallel_world_size()


def _all_gather(t: torch.Tensor, group: object, world: int) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(out, t.contiguous(), group=group)
    return out


class TPTargetBackend(TargetBackend):
    def __init__(self, name: str, *, aux_layer_ids: list[int] | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        self.group, self.tp_rank, self.tp = _tp_state()
        path = model_dir(name)
        self.config = AutoConfig.from_pretrained(str(path))
        self.aux_layer_ids = resolve_aux_layer_ids(self.config.num_hidden_layers, aux_layer_ids)
        self.model = TPLlamaModel(self.config, self.tp, dtype)
        weights = HFWeights(path)
        self.model.load_hf(weights, self.tp_rank)
        self.model.to(device).eval()
        tied = bool(getattr(self.config, "tie_word_embeddings", False)) or "lm_head.weight" not in weights
        self.head_shard = self.model.embed_tokens.weight if tied else \
            weights.get("lm_head.weight", dim=0, part=self.tp_rank, parts=self.tp).to(device, dtype)
        self.vocab_start = self.tp_rank * (self.config.vocab_size // self.tp)
        self._embedding: torch.Tensor | None = None

    def embedding_weight(self) -> torch.Tensor:
        if self._embedding is None:  # gathered once: the draft shares the full (frozen) embedding
            shards = _all_gather(self.model.embed_tokens.weight.detach(), self.group, self.tp)
            self._embedding = torch.cat(shards, 0)
        return self._embedding

    def _draft_vocab_logits(self, last: torch.Tensor, t2d: torch.Tensor) -> torch.Tensor:
        """[B, T, V_d] target logits on the draft vocab, each rank scoring the rows of its vocab shard."""
        n = self.head_shard.shape[0]
        local_rows = self.head_shard[t2d[self.vocab_start:self.vocab_start + n]]
        counts = [int(c) for c in t2d.view(self.tp, n).sum(1)]  # same t2d everywhere -> known sizes
        local = last @ local_rows.t()
        pad = max(counts) - local.shape[-1]
        pieces = _all_gather(torch.nn.functional.pad(local, (0, pad)), self.group, self.tp)
        # vocab shards are contiguous ascending id ranges, so rank order = draft-id order
        return torch.cat([p[..., :c] for p, c in zip(pieces, counts)], dim=-1)

    def _full_vocab_argmax(self, last: torch.Tensor) -> torch.Tensor:
        """Full-vocab argmax from the vocab shards: per-shard max, then the first shard holding the maximum
        (= torch.argmax's first-occurrence rule on the unsharded logits)."""
        best, idx = (last @ self.head_shard.t()).max(-1)
        vals = torch.stack(_all_gather(best.float(), self.group, self.tp))
        ids = torch.stack(_all_gather(idx + self.vocab_start, self.group, self.tp))
        return ids.gather(0, vals.argmax(0, keepdim=True))[0]

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t2d: torch.Tensor) -> TargetOutputs:
        aux, last = self.model(input_ids, attention_mask, self.aux_layer_ids)
        probs = torch.softmax(self._draft_vocab_logits(last, t2d.to(last.device)).float(), dim=-1)
        return TargetOutputs(aux_hidden=torch.cat(aux, dim=-1), last_hidden=last, target_probs=probs,
                             target_argmax=self._full_vocab_argmax(last))


class ResplitTarget(TargetBackend):
    """Run `inner` on the TP group's concatenated batches; return this rank's rows only."""

    def __init__(self, inner: TPTargetBackend):
        self.inner, self.config, self.aux_layer_ids = inner, inner.config, inner.aux_layer_ids

    def embedding_weight(self) -> torch.Tensor:
        return self.inner.embedding_weight()

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t2d: torch.Tensor) -> TargetOutputs:
        group, rank, tp = self.inner.group, self.inner.tp_rank, self.inner.tp
        if tp == 1:
            return self.inner.forward(input_ids, attention_mask, t2d)
        b, t = input_ids.shape
        shape = torch.tensor([b, t])
        shapes = _all_gather(shape, group, tp)
        if any(int(s[0]) != b for s in shapes):
            raise ValueError(f"TP ranks must bring equal batch sizes, got {[int(s[0]) for s in shapes]}")
        t_max = max(int(s[1]) for s in shapes)
        ids = torch.nn.functional.pad(input_ids, (0, t_max - t))
        mask = torch.nn.functional.pad(attention_mask.long(), (0, t_max - t))  # gloo has no bool collectives
        all_mask = torch.cat(_all_gather(mask, group, tp)).bool()
        out = self.inner.forward(torch.cat(_all_gather(ids, group, tp)), all_mask, t2d)
        mine = slice(rank * b, (rank + 1) * b)
        return TargetOutputs(aux_hidden=out.aux_hidden[mine, :t], last_hidden=out.last_hidden[mine, :t],
                             target_probs=out.target_probs[mine, :t], target_argmax=out.target_argmax[mine, :t])
