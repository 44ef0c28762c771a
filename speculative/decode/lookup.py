"""Prompt lookup: draft by copying what followed an earlier occurrence of the current suffix (no model).

As vLLM's `ngram` proposer: for n = max_n down to min_n, find an earlier occurrence of the last n tokens of
prompt + generated text and propose the k tokens that followed it. Two deliberate differences from vLLM
0.32 (which takes the earliest occurrence and stops at the end of the text): we take the most recent
occurrence (recent text predicts best), and where fewer than k tokens follow it we keep copying from the
proposal itself, so a repeating pattern continues with its period.

Cross-request lookup (`lookup.history_tokens` > 0; SuffixDecoding's idea in n-gram form, beyond vLLM's
per-request proposer): the responses this drafter produced for earlier requests are kept in a second index,
searched only when the request's own text has no match (own text predicts best). Responses to similar
requests share phrasing (openers, list scaffolding, code idioms), so copies from them get accepted where the
request's own text has nothing to offer. Outputs are unchanged (drafts are verified); only timing depends
on earlier traffic, so do not share one engine across tenants who must not learn about each other's.

Confidence (dynamic draft length): a proposal from an n-gram match scores depth * log(rate_n), rate_n being
the per-token acceptance of recent lookup proposals at that n (decayed counts over a prior). Scores only
shorten drafts through `min_draft_prob` or a tree budget; exactness never depends on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

from speculative.decode.config import DecodeConfig, LookupConfig
from speculative.decode.tree import LOOKUP, DraftTree, chain_nodes, merge_chain, prune_tree


def ngrams_ending(toks: list[int], ends: range, sizes: Iterable[int]) -> Iterator[tuple[int, tuple[int, ...], int]]:
    """(n, the n-gram, its end index) for every end in `ends` and every n in `sizes` that fits, in order."""
    for end in ends:
        for n in sizes:
            if end + 1 >= n:
                yield n, tuple(toks[end + 1 - n: end + 1]), end


class NgramIndex:
    """A growing token list with, per n, the end index of the most recent occurrence of every n-gram that
    ends before the last token (the suffix is looked up, so it must not match itself). O(max_n) per token."""

    def __init__(self, min_n: int, max_n: int):
        self.min_n, self.max_n = min_n, max_n
        self.tokens: list[int] = []
        self._last_end: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(min_n, max_n + 1)}
        self._indexed = 0  # n-grams ending at positions < _indexed are in the tables

    def extend(self, tokens: list[int]) -> None:
        self.tokens.extend(tokens)

    def truncate(self, length: int) -> None:
        if length < len(self.tokens):  # rare (the engine only appends): re-index rather than un-index
            self.tokens = self.tokens[:length]
            self._last_end = {n: {} for n in self._last_end}
            self._indexed = 0

    def _catch_up(self) -> None:
        last = len(self.tokens) - 1
        for n, gram, end in ngrams_ending(self.tokens, range(self._indexed, last), self._last_end):
            self._last_end[n][gram] = end
        self._indexed = max(self._indexed, last)

    def match(self) -> tuple[int, int] | None:
        """(n, end index of the most recent earlier occurrence of the last n tokens), longest n first."""
        self._catch_up()
        size = len(self.tokens)
        for n in range(min(self.max_n, size - 1), self.min_n - 1, -1):
            end = self._last_end[n].get(tuple(self.tokens[size - n:]))
            if end is not None:
                return n, end
        return None

    def propose(self, k: int) -> tuple[int, list[int]]:
        """(matched n, up to k proposed tokens); (0, []) without a match."""
        found = self.match()
        if found is None:
            return 0, []
        n, end = found
        size, out = len(self.tokens), []
        for i in range(k):
            j = end + 1 + i
            out.append(self.tokens[j] if j < size else out[j - size])  # j - size < i: already proposed
        return n, out


class HistoryIndex:
    """Earlier responses for cross-request lookup: per n, the most recent (response, end index) of every
    n-gram that has a continuation. At most `max_tokens` tokens: past that, the oldest responses are dropped
    until half remain and the tables are rebuilt (amortised O(max_n) per added token)."""

    def __init__(self, min_n: int, max_n: int, max_tokens: int):
        self.min_n, self.max_n, self.max_tokens = min_n, max_n, max_tokens
        self.seqs: list[list[int]] = []
        self.size = 0
        self._last: dict[int, dict[tuple[int, ...], tuple[int, int]]] = {n: {} for n in range(min_n, max_n + 1)}

    def add(self, tokens: list[int]) -> None:
        tokens = list(tokens)[-self.max_tokens:] if self.max_tokens > 0 else []
        if len(tokens) < 2:
            return
        self.seqs.append(tokens)
        self.size += len(tokens)
        if self.size > self.max_tokens:
            while self.size > self.max_tokens // 2 and len(self.seqs) > 1:
                self.size -= len(self.seqs.pop(0))
            self._last = {n: {} for n in self._last}
            for sid in range(len(self.seqs)):
                self._index(sid)
        else:
            self._index(len(self.seqs) - 1)

    def _index(self, sid: int) -> None:
        toks = self.seqs[sid]
        # an n-gram ending at the last token has nothing to propose
        for n, gram, end in ngrams_ending(toks, range(len(toks) - 1), self._last):
            self._last[n][gram] = (sid, end)

    def propose(self, context: list[int], k: int) -> tuple[int, list[int]]:
        """(matched n, up to k tokens that followed the most recent earlier occurrence of the context's last
        n tokens in a stored response), longest n first; (0, []) without a match."""
        for n in range(min(self.max_n, len(context)), self.min_n - 1, -1):
            hit = self._last[n].get(tuple(context[-n:]))
            if hit is not None:
                sid, end = hit
                return n, self.seqs[sid][end + 1: end + 1 + k]
        return 0, []


class LookupDrafter:
    """The prompt-lookup drafter: a chain from the n-gram index, no draft model (also the hybrid's lookup half).

    Speaks the engine's drafter interface: `sync` commits target tokens (returns no log-probs), `draft_tree`
    builds the round's tree, `finish` hands it the request's response (kept for cross-request lookup). It
    learns its acceptance rate per match length and source (own text: key n, history: key -n) from what the
    next `sync` commits."""

    needs_features = False

    def __init__(self, cfg: LookupConfig):
        self.cfg = cfg
        self.forwards = 0  # no model: kept for the drafters' common counters
        self.history = (HistoryIndex(cfg.history_min_n, cfg.max_n, cfg.history_tokens)
                        if cfg.history_tokens > 0 else None)  # outlives reset(): it spans requests
        self.history_accepted = 0  # accepted tokens that came from the history (all requests)
        self.reset()

    def reset(self) -> None:
        self.index = NgramIndex(self.cfg.min_n, self.cfg.max_n)
        self._stats: dict[int, list[float]] = {}  # n -> [decayed accepted, decayed tested]
        self._pending: tuple[int, list[int], int] | None = None  # (n, verified chain, context length then)

    def finish(self, response: list[int]) -> None:
        """The request's generated tokens: kept for cross-request lookup (no-op when it is off)."""
        if self.history is not None:
            self.history.add(response)

    def rate(self, n: int) -> float:
        acc, tested = self._stats.get(n, (0.0, 0.0))
        c = self.cfg
        return min(max((acc + c.prior_accept * c.prior_weight) / (tested + c.prior_weight), 1e-4), 0.999)

    def sync(self, ids: torch.Tensor, features: torch.Tensor | None, start: int) -> None:
        """Commit target tokens at positions start.. (the last one is the root of the next tree)."""
        ids = torch.as_tensor(ids).tolist()
        have = self.index.tokens[start:]
        if ids[: len(have)] == have:
            self.index.extend(ids[len(have):])
        else:
            self.index.truncate(start)
            self.index.extend(ids)
        self._learn()
        return None

    def _learn(self) -> None:
        if self._pending is None:
            return
        n, chain, at = self._pending
        self._pending = None
        new = self.index.tokens[at: at + len(chain)]
        accepted = next((i for i, (a, b) in enumerate(zip(chain, new)) if a != b), min(len(chain), len(new)))
        tested = min(accepted + 1, len(chain))  # the first rejected token was tested too
        if n < 0:
            self.history_accepted += accepted
        s = self._stats.setdefault(n, [0.0, 0.0])
        s[0] = self.cfg.decay * s[0] + accepted
        s[1] = self.cfg.decay * s[1] + tested

    def propose(self) -> tuple[int, list[int], list[float]]:
        """(source key: matched n, or -n for a history match; proposed tokens; their cumulative log-confidence)."""
        n, chain = self.index.propose(self.cfg.k)
        if not chain and self.history is not None:
            n, chain = self.history.propose(self.index.tokens, self.cfg.k)
            n = -n
        step = math.log(self.rate(n)) if chain else 0.0
        return n, chain, [step * (i + 1) for i in range(len(chain))]

    def verified(self, n: int, chain: list[int]) -> None:
        # n: the source key from `propose`
        """Record the chain the target verifies this round (after any pruning), to learn from the next sync."""
        self._pending = (n, chain, len(self.index.tokens)) if chain else None

    def draft_tree(self, root: int, root_logprobs: torch.Tensor | None, cfg: DecodeConfig) -> DraftTree:
        n, chain, scores = self.propose()
        base = DraftTree(torch.tensor([root]), [-1], torch.zeros(1, dtype=torch.long), [0.0], [0])
        tree = prune_tree(merge_chain(base, chain, scores, LOOKUP), cfg.max_tree_tokens, cfg.min_draft_prob)
        self.verified(n, chain[: chain_nodes(tree, chain)])
        return tree
