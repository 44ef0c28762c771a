"""Predict what greedy speculative decoding with a draft will accept on given target outputs.

For a sequence that the target itself produced greedily (prompt + output), draft step k at row t
proposes target id `draft_to_target(argmax)`; it is accepted iff it equals token t+k+2 and every earlier
step of the chain was accepted. This is the TTT unroll with the target's greedy tokens as inputs (the
inputs a correct chain would see), evaluated round by round as an engine does: a round starts at the
last prompt position, accepts n leading correct tokens, and the next round starts n+1 rows later.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speculative.data.dataset import Batch
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetBackend
from speculative.train.ttt import shift_left


@dataclass
class AcceptanceStats:
    rounds: int = 0
    draft_tokens: int = 0
    accepted_tokens: int = 0
    accepted_per_position: list[int] | None = None

    @property
    def mean_accept_len(self) -> float:
        """Tokens per round (accepted + the target's bonus token)."""
        return (self.accepted_tokens + self.rounds) / max(self.rounds, 1)


@torch.no_grad()
def greedy_acceptance(draft: Eagle3Draft, target: TargetBackend, prompt_ids: list[int], output_ids: list[int],
                      num_speculative_tokens: int, stats: AcceptanceStats | None = None) -> AcceptanceStats:
    k = num_speculative_tokens
    stats = stats or AcceptanceStats(accepted_per_position=[0] * k)
    ids = torch.tensor([prompt_ids + output_ids])
    b, t = ids.shape
    att = torch.ones_like(ids, dtype=torch.bool)
    tout = target.forward(ids, att, draft.t2d)
    batch = Batch(ids, att, att)
    hidden = draft.project_aux(tout.aux_hidden)
    kv: list = []
    rows = torch.arange(t)[None]
    correct = torch.zeros(k, t, dtype=torch.bool)
    for step in range(k):
        pre = draft.forward_ttt(draft.embed(shift_left(batch.input_ids, step + 1)), hidden, rows + step, kv)
        proposal = draft.draft_to_target(draft.logits(pre).argmax(-1))[0]
        truth = shift_left(ids, step + 2, -1)[0]
        correct[step] = proposal == truth
        hidden = pre
    pos = len(prompt_ids) - 1  # the first round drafts after the prefill's token at row P
    while pos + 2 < t:  # at least one drafted token has a known target answer
        n = 0
        while n < k and pos + n + 2 < t and bool(correct[n, pos]):
            stats.accepted_per_position[n] += 1
            n += 1
        stats.rounds += 1
        stats.draft_tokens += k
        stats.accepted_tokens += n
        pos += n + 1
    return stats
