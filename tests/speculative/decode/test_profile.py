"""speculative.evaluate.profile on a tiny Llama: latencies per backend, AR rate, and the per-layer / per-part
breakdown of the fast forward (every layer and part accounted for, the timers removed afterwards)."""

import speculative.decode.llama_fast as fast
from speculative.evaluate.profile import ar_tokens_per_s, breakdown, target_latency

from .helpers import tiny_target


def test_latency_per_backend_and_ar_rate():
    model = tiny_target()
    for backend in ("fast", "hf", "hf_small_m"):
        t = target_latency(model, context=8, sizes=[1, 4], repeats=1, backend=backend)
        assert set(t) == {1, 4} and all(v > 0 for v in t.values())
    assert ar_tokens_per_s(model, context=8, new_tokens=3) > 0
    assert not any(getattr(m, "_llmsys_small_m", False) for m in model.modules())  # hf_small_m routed a copy


def test_breakdown_names_every_layer_and_part():
    model = tiny_target()
    originals = {n: getattr(fast, n) for n in ("decode_linear", "decode_swiglu", "decode_rmsnorm_residual", "decode_attention")}
    out = breakdown(model, context=8, n=3, repeats=2)
    assert {n: getattr(fast, n) for n in originals} == originals  # timers unwrapped
    layers = model.config.num_hidden_layers
    assert len(out["per_layer_ms"]) == layers and all(v > 0 for v in out["per_layer_ms"])
    assert set(out["per_part_ms"]) == {"in_norm", "qkv", "attention", "o", "post_norm", "gate_up", "down",
                                       "final_norm", "lm_head"}
    assert out["tokens"] == 3 and out["wall_ms"] > 0 and out["top_ops"]
    calls = {k: v["calls_per_forward"] for k, v in out["top_ops"].items()}
    assert calls.get("llmsys::decode_attention", layers) == layers  # one attention call per layer, if listed


def test_streamed_weight_bytes_counts_a_tied_head_once_and_skips_an_untied_embedding():
    import torch

    from speculative.evaluate.profile import streamed_weight_bytes

    model = tiny_target()
    every = {p.data_ptr(): p for p in model.parameters()}
    total = sum(p.numel() * 4 for p in every.values())
    embed = model.get_input_embeddings().weight
    tied = embed.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    assert streamed_weight_bytes(model) == (total if tied else total - embed.numel() * 4)
    model.lm_head.weight = torch.nn.Parameter(embed.detach().clone())  # untie: the head streams, the table not
    assert streamed_weight_bytes(model) == sum(p.numel() * 4 for p in model.parameters()) - embed.numel() * 4
