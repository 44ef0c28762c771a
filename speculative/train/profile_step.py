"""Where does an EAGLE-3 draft training step spend its time? (`make profile-draft`; picked runtime.ops' kernel 2)

    python -m speculative profile-step [tokens=1024] [vocab=32000] [ttt_steps=2] [ops_impl=reference]

One real training step of `speculative.model.Eagle3Draft` at SmolLM2-135M's shapes (random weights and
target states, batch 1, `ttt_unroll` with the SDPA TTT mask, loss backward), under torch.profiler. Each piece
of the forward runs under a record_function label (forward ms per piece: fc, the two input RMSNorms + concat,
q/k/v + RoPE, the TTT attention with its mask, o_proj, the post-attention RMSNorm, the MLP, the residual adds,
the final RMSNorm, lm_head + soft CE); the backward is reported as the top autograd functions by self time
(their names say which forward op they belong to). `ops_impl` picks the soft-CE implementation (runtime.ops;
default `reference`: the unfused step, as the kernel choice was measured; `auto`: what training runs).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import torch
from pydantic import Field

import speculative.train.ttt as ttt
from runtime.config import StrictModel, config_from_cli
from runtime.ops import set_impl
from speculative.data.dataset import Batch
from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig
from speculative.target.backend import TargetOutputs

# SmolLM2-135M-Instruct's config.json fields the draft copies (no download needed)
SMOLLM2_135M = {"hidden_size": 576, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
                "intermediate_size": 1536, "rms_norm_eps": 1e-5, "hidden_act": "silu", "rope_theta": 100000.0,
                "max_position_embeddings": 8192, "vocab_size": 49152, "num_hidden_layers": 30}

# label -> (object path from the draft, attribute): the pieces timed in the forward
PIECES = {"fc": ("", "project_aux"), "rmsnorm_in+concat": ("midlayer", "attn_input"),
          "qkv+rope": ("midlayer.self_attn", "qkv"), "o_proj": ("midlayer.self_attn", "out"),
          "rmsnorm_post": ("midlayer.post_attention_layernorm", "forward"), "mlp": ("midlayer.mlp", "forward"),
          "rmsnorm_out": ("norm", "forward"),
          # containers: the pieces above are inside them; what they hold besides is reported on its own
          "_ttt_step": ("", "forward_ttt"), "_finish": ("midlayer", "finish")}
CE = "lm_head+soft_ce"


class ProfileStepConfig(StrictModel):
    tokens: int = Field(1024, ge=4)  # sequence length (batch 1)
    vocab: int = Field(32000, ge=1, le=SMOLLM2_135M["vocab_size"])  # draft vocabulary
    ttt_steps: int = Field(2, ge=1)  # TTT unroll length
    ops_impl: Literal["reference", "cpu", "cuda", "triton", "auto"] = "reference"  # soft-CE impl (see the doc)
    seed: int = 0


@contextlib.contextmanager
def labelled_pieces(draft: Eagle3Draft) -> Iterator[None]:
    """Run the draft's pieces (and ttt's soft CE) under record_function labels; instance attributes shadow
    the methods while the context is open."""
    patched = []
    for label, (path, attr) in PIECES.items():
        obj = draft.get_submodule(path) if path else draft
        fn = getattr(obj, attr)

        def labelled(*args: Any, _fn=fn, _label=label, **kwargs: Any) -> Any:
            with torch.profiler.record_function(_label):
                return _fn(*args, **kwargs)

        setattr(obj, attr, labelled)
        patched.append((obj, attr))
    soft_ce = ttt.soft_cross_entropy

    def labelled_ce(*args: Any, **kwargs: Any) -> Any:
        with torch.profiler.record_function(CE):
            return soft_ce(*args, **kwargs)

    ttt.soft_cross_entropy = labelled_ce
    try:
        yield
    finally:
        ttt.soft_cross_entropy = soft_ce
        for obj, attr in patched:
            delattr(obj, attr)


def synthetic_step_inputs(draft: Eagle3Draft, tokens: int, seed: int) -> tuple[Batch, TargetOutputs]:
    """Random token ids and target states of the right shapes; the target argmax always in the draft vocab."""
    cfg = draft.config
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (1, tokens), generator=gen)
    mask = torch.ones(1, tokens, dtype=torch.bool)
    aux = torch.randn(1, tokens, 3 * cfg.target_hidden_size, generator=gen)
    probs = torch.softmax(torch.randn(1, tokens, cfg.draft_vocab_size, generator=gen), -1)
    argmax = draft.draft_to_target(probs.argmax(-1))
    return Batch(ids, mask, mask.clone()), TargetOutputs(aux, torch.zeros(1, tokens, cfg.hidden_size), probs, argmax)


def profile_step(cfg: ProfileStepConfig) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    draft = Eagle3Draft(Eagle3DraftConfig.from_target(SMOLLM2_135M, cfg.vocab)).train()
    batch, target = synthetic_step_inputs(draft, cfg.tokens, cfg.seed)

    def step() -> None:
        ttt.ttt_unroll(draft, batch, target, ttt_length=cfg.ttt_steps, attn_impl="sdpa").loss.backward()
        draft.zero_grad(set_to_none=True)

    set_impl(None if cfg.ops_impl == "auto" else cfg.ops_impl)
    try:
        step()  # warm-up
        with labelled_pieces(draft), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
    finally:
        set_impl(None)
    labels = {*PIECES, CE}
    ms: dict[str, float] = dict.fromkeys(sorted(labels), 0.0)
    for evt in prof.events():
        if evt.name in labels:
            ms[evt.name] += evt.cpu_time_total / 1e3
    pieces = {k: v for k, v in ms.items() if not k.startswith("_")}
    inside_step = sum(ms[k] for k in ("rmsnorm_in+concat", "qkv+rope", "_finish"))
    pieces["ttt_attention(rope+mask+sdpa)"] = ms["_ttt_step"] - inside_step
    pieces["residual_adds"] = ms["_finish"] - sum(ms[k] for k in ("o_proj", "rmsnorm_post", "mlp"))
    ops = [e for e in prof.key_averages() if e.key not in labels]
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:15]
    norms = sum(pieces[k] for k in ("rmsnorm_in+concat", "rmsnorm_post", "rmsnorm_out", "residual_adds"))
    return {"total_self_ms": round(sum(e.self_cpu_time_total for e in ops) / 1e3, 1),
            "forward_ms_by_section": {k: round(v, 1) for k, v in sorted(pieces.items(), key=lambda kv: -kv[1])},
            "rmsnorms_with_residual_adds_ms": round(norms, 1),
            "top_ops_self_ms": {e.key: round(e.self_cpu_time_total / 1e3, 1) for e in top}}


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(ProfileStepConfig, argv, description=__doc__, example="tokens=256 vocab=8192")
    start = time.perf_counter()
    result = profile_step(cfg)
    result.update(tokens=cfg.tokens, vocab=cfg.vocab, ttt_steps=cfg.ttt_steps, ops_impl=cfg.ops_impl,
                  threads=torch.get_num_threads(), wall_s=round(time.perf_counter() - start, 1))
    print(json.dumps(result, indent=1))
    return 0
