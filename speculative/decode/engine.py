"""The speculative decoding loop (draft -> verify -> accept -> commit) and the autoregressive baseline,
both on the same TargetRunner so that speed-ups are measured like for like.

Drafters: a model drafter (LMDrafter, Eagle3Drafter: `sync` + `expand`, trees from `build_tree`), or one
that builds its own tree (`draft_tree`: LookupDrafter, HybridDrafter). Accepted tokens are counted per
source (model / lookup / both) from the tree's node flags."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from speculative.decode.accept import accept_greedy, accept_sampling, sample_token
from speculative.decode.config import DecodeConfig
from speculative.decode.target import TargetRunner
from speculative.decode.tree import SOURCE_NAMES, DraftTree, build_tree


@dataclass
class DecodeStats:
    new_tokens: int = 0
    target_forwards: int = 0  # decode-phase forwards (prefill excluded)
    accepted: list[int] = field(default_factory=list)  # drafted tokens accepted per verification
    prefill_s: float = 0.0
    decode_s: float = 0.0
    draft_s: float = 0.0
    verify_s: float = 0.0
    # per source (model / lookup / both): drafted nodes verified, and accepted tokens
    drafted_by_source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCE_NAMES.values(), 0))
    accepted_by_source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCE_NAMES.values(), 0))

    def count_sources(self, tree: DraftTree, path: list[int]) -> None:
        for i in range(1, tree.size):
            self.drafted_by_source[SOURCE_NAMES[tree.source_of(i)]] += 1
        for i in path[1:]:
            self.accepted_by_source[SOURCE_NAMES[tree.source_of(i)]] += 1

    @property
    def tau(self) -> float:
        """Tokens per target forward in decoding (accepted drafts + 1 bonus, averaged)."""
        return (sum(self.accepted) + len(self.accepted)) / max(len(self.accepted), 1)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / max(self.prefill_s + self.decode_s, 1e-9)


@dataclass
class DecodeResult:
    token_ids: list[int]
    stats: DecodeStats
    finish_reason: str  # "stop" | "length"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SpeculativeEngine:
    def __init__(self, target: TargetRunner, drafter, cfg: DecodeConfig, eos_ids: Sequence[int] = ()):
        self.target, self.drafter, self.cfg = target, drafter, cfg
        self.eos_ids = set(eos_ids) if cfg.stop_on_eos else set()
        self.generator = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else 0)

    def _finish(self, out: list[int], new: list[int], limit: int) -> tuple[list[int], str | None]:
        for t in new:
            out.append(t)
            if t in self.eos_ids:
                return out, "stop"
            if len(out) >= limit:
                return out, "length"
        return out, None

    def _draft(self, root: int, root_lp: torch.Tensor | None) -> DraftTree:
        cfg, own = self.cfg, getattr(self.drafter, "draft_tree", None)
        if own is not None:
            return own(root, root_lp, cfg)
        return build_tree(root, root_lp, self.drafter, depth=cfg.depth, topk=cfg.topk,
                          num_draft_tokens=cfg.num_draft_tokens, min_prob=cfg.min_draft_prob)

    def _first_token(self, prompt_ids: torch.Tensor, want_features: bool, stats: DecodeStats):
        t0 = time.perf_counter()
        pre = self.target.prefill(prompt_ids, want_features=want_features)
        root = sample_token(pre.logits[-1], self.cfg.temperature, self.cfg.top_p, self.generator)
        _sync(self.target.device)
        stats.prefill_s = time.perf_counter() - t0
        return pre, root

    def generate(self, prompt_ids: torch.Tensor, max_new_tokens: int | None = None) -> DecodeResult:
        cfg, limit = self.cfg, max_new_tokens or self.cfg.max_new_tokens
        prompt_ids = torch.as_tensor(prompt_ids, dtype=torch.long).flatten().cpu()
        stats = DecodeStats()
        want = bool(getattr(self.drafter, "needs_features", False))
        pre, root = self._first_token(prompt_ids, want, stats)
        out, reason = self._finish([], [root], limit)
        t_start = time.perf_counter()
        if reason is None:
            self.drafter.reset()
            root_lp = self.drafter.sync(torch.cat([prompt_ids, torch.tensor([root])]), pre.features, 0)
        while reason is None:
            t0 = time.perf_counter()
            tree = self._draft(root, root_lp)
            t1 = time.perf_counter()
            ver = self.target.verify(tree.tokens, tree.depths, tree.ancestor_mask(), want_features=want)
            if cfg.greedy:
                path, bonus = accept_greedy(tree, ver.logits)
            else:
                path, bonus = accept_sampling(tree, ver.logits, cfg.temperature, cfg.top_p, self.generator)
            self.target.commit(path, tree.size)
            _sync(self.target.device)
            stats.draft_s += t1 - t0
            stats.verify_s += time.perf_counter() - t1
            stats.target_forwards += 1
            stats.accepted.append(len(path) - 1)
            stats.count_sources(tree, path)
            accepted = tree.tokens[path[1:]].tolist()
            out, reason = self._finish(out, accepted + [bonus], limit)
            if reason is None:
                feats = ver.features[path] if ver.features is not None else None
                ids = torch.tensor([root, *accepted, bonus])
                t2 = time.perf_counter()
                root_lp = self.drafter.sync(ids, feats, self.target.length - len(path))
                stats.draft_s += time.perf_counter() - t2
                root = bonus
        finish = getattr(self.drafter, "finish", None)
        if finish is not None:  # drafters that learn across requests (cross-request lookup) see the response
            finish(out)
        stats.decode_s = time.perf_counter() - t_start
        stats.new_tokens = len(out)
        return DecodeResult(out, stats, reason)

    def generate_autoregressive(self, prompt_ids: torch.Tensor, max_new_tokens: int | None = None) -> DecodeResult:
        """Baseline: one target forward per token through the same runner and KV cache."""
        limit = max_new_tokens or self.cfg.max_new_tokens
        prompt_ids = torch.as_tensor(prompt_ids, dtype=torch.long).flatten().cpu()
        stats = DecodeStats()
        _, tok = self._first_token(prompt_ids, False, stats)
        out, reason = self._finish([], [tok], limit)
        t_start = time.perf_counter()
        while reason is None:
            logits = self.target.step(tok).logits[-1]
            tok = sample_token(logits, self.cfg.temperature, self.cfg.top_p, self.generator)
            stats.target_forwards += 1
            stats.accepted.append(0)
            out, reason = self._finish(out, [tok], limit)
        _sync(self.target.device)
        stats.decode_s = time.perf_counter() - t_start
        stats.new_tokens = len(out)
        return DecodeResult(out, stats, reason)
