"""Where does an EAGLE-3 draft training step spend its time? Picks the second fused kernel from a measurement.

A faithful stand-in of speculative/model/draft.py (runtime/ must not import speculative/): fc over the
3 target aux states, the midlayer (two input RMSNorms + concat, GQA q/k/v + RoPE, SDPA under the dense TTT
mask, o_proj + residual, post-attention RMSNorm, SwiGLU MLP + residual), final RMSNorm, lm_head + soft CE.
Each piece runs under record_function (forward time per piece); the backward is reported as the top
autograd functions by self time (their names say which forward op they belong to).

    python -m runtime.ops.profile_draft --tokens 1024 --vocab 32000
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from runtime.ops.reference import soft_cross_entropy_reference

H, HEADS, KV_HEADS, HEAD_DIM, FFN, EPS = 576, 9, 3, 64, 1536, 1e-5  # SmolLM2-135M shapes


def rms_norm(x, w):
    """LlamaRMSNorm as written in transformers: fp32 upcast, mean of squares, rsqrt, cast back, scale."""
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def ttt_mask(t: int, step: int) -> torch.Tensor:
    """Block 0 causal, then each later block only its own diagonal (the TTT chain), as masks.py."""
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    eye = torch.eye(t, dtype=torch.bool)
    return torch.cat([causal] + [eye] * step, dim=1)


def _params(vocab: int) -> dict[str, torch.Tensor]:
    def p(*shape, scale=0.02):
        return (torch.randn(*shape) * scale).requires_grad_()
    return dict(fc=p(H, 3 * H), n_in=p(H, scale=1.0), n_hid=p(H, scale=1.0), q=p(HEADS * HEAD_DIM, 2 * H),
                k=p(KV_HEADS * HEAD_DIM, 2 * H), v=p(KV_HEADS * HEAD_DIM, 2 * H), o=p(H, HEADS * HEAD_DIM),
                n_post=p(H, scale=1.0), gate=p(FFN, H), up=p(FFN, H), down=p(H, FFN), n_out=p(H, scale=1.0),
                head=p(vocab, H))


def _section(name):
    return torch.profiler.record_function(name)


def draft_step_loss(prm, embeds, aux, target_probs, t: int, steps: int) -> torch.Tensor:
    b = embeds.shape[0]
    cos = torch.randn(1, 1, t, HEAD_DIM)
    sin = torch.randn(1, 1, t, HEAD_DIM)
    with _section("fc"):
        hidden = F.linear(aux, prm["fc"])
    keys, values, total = [], [], 0.0
    for step in range(steps):
        with _section("rmsnorm_in+concat"):
            x = torch.cat([rms_norm(embeds, prm["n_in"]), rms_norm(hidden, prm["n_hid"])], -1)
        with _section("qkv+rope"):
            q = rope(F.linear(x, prm["q"]).view(b, t, HEADS, HEAD_DIM).transpose(1, 2), cos, sin)
            k = rope(F.linear(x, prm["k"]).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2), cos, sin)
            v = F.linear(x, prm["v"]).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        keys.append(k)
        values.append(v)
        with _section("ttt_attention(sdpa+mask)"):
            attn = F.scaled_dot_product_attention(q, torch.cat(keys, 2), torch.cat(values, 2),
                                                  attn_mask=ttt_mask(t, step), enable_gqa=True)
        with _section("o_proj"):
            o = F.linear(attn.transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM), prm["o"])
        with _section("residual+rmsnorm_post"):
            h = hidden + o
            normed = rms_norm(h, prm["n_post"])
        with _section("mlp"):
            mlp = F.linear(F.silu(F.linear(normed, prm["gate"])) * F.linear(normed, prm["up"]), prm["down"])
        with _section("residual+rmsnorm_out"):
            hidden = h + mlp
            final = rms_norm(hidden, prm["n_out"])
        with _section("lm_head+soft_ce"):
            loss, _ = soft_cross_entropy_reference(final.reshape(b * t, H), prm["head"],
                                                   target_probs.reshape(b * t, -1))
        total = total + loss.mean()
    return total


def profile(tokens: int, vocab: int, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    prm = _params(vocab)
    embeds, aux = torch.randn(1, tokens, H), torch.randn(1, tokens, 3 * H)
    target_probs = torch.softmax(torch.randn(tokens, vocab), -1)
    draft_step_loss(prm, embeds, aux, target_probs, tokens, steps).backward()  # warm-up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        draft_step_loss(prm, embeds, aux, target_probs, tokens, steps).backward()
    per_section: dict[str, float] = {}
    for evt in prof.events():
        if evt.name in _SECTIONS:
            per_section[evt.name] = round(per_section.get(evt.name, 0.0) + evt.cpu_time_total / 1e3, 1)
    ops = [e for e in prof.key_averages() if e.key not in _SECTIONS]
    total_ms = sum(e.self_cpu_time_total for e in ops) / 1e3
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:15]
    return dict(total_self_ms=round(total_ms, 1), forward_ms_by_section=per_section,
                top_ops_self_ms={e.key: round(e.self_cpu_time_total / 1e3, 1) for e in top})


_SECTIONS = {"fc", "rmsnorm_in+concat", "qkv+rope", "ttt_attention(sdpa+mask)", "o_proj", "residual+rmsnorm_post",
             "mlp", "residual+rmsnorm_out", "lm_head+soft_ce"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--ttt-steps", type=int, default=2)
    args = ap.parse_args()
    start = time.perf_counter()
    result = profile(args.tokens, args.vocab, args.ttt_steps)
    result.update(tokens=args.tokens, vocab=args.vocab, ttt_steps=args.ttt_steps, threads=torch.get_num_threads(),
                  wall_s=round(time.perf_counter() - start, 1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
