"""Single-process checks: megatron TP=1 target == HF target, sharded checkpoint reads, configs, rank schedule."""

import pytest
import torch

from runtime.config import build_config


@pytest.fixture
def tp1():
    from runtime.distributed import destroy, init_distributed, init_tensor_parallel

    init_distributed()
    init_tensor_parallel(1)
    yield
    destroy()


def test_tp1_target_matches_hf(spec_tiny_target_dir, tp1):
    from transformers import AutoModelForCausalLM

    from speculative.parallel.tp_target import ResplitTarget, TPTargetBackend
    from speculative.target.backend import HFTargetBackend

    tp = ResplitTarget(TPTargetBackend(str(spec_tiny_target_dir), aux_layer_ids=[1, 3, 5]))
    hf = HFTargetBackend(AutoModelForCausalLM.from_pretrained(str(spec_tiny_target_dir), dtype=torch.float32),
                         aux_layer_ids=[1, 3, 5])
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, hf.config.vocab_size, (2, 13), generator=gen)
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[0, 9:] = False  # right padding: real positions must be unaffected
    t2d = torch.zeros(hf.config.vocab_size, dtype=torch.bool)
    t2d[torch.randperm(hf.config.vocab_size, generator=gen)[:50]] = True
    a, b = tp.forward(ids, mask, t2d), hf.forward(ids, mask, t2d)
    assert a.aux_hidden.shape == b.aux_hidden.shape == (2, 13, 3 * 64)
    assert a.target_probs.shape == (2, 13, 50)
    for k in ("aux_hidden", "last_hidden", "target_probs"):
        torch.testing.assert_close(getattr(a, k)[mask], getattr(b, k)[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tp.embedding_weight(), hf.embedding_weight())


def test_hf_weights_slices(spec_tiny_target_dir):
    from safetensors.torch import load_file

    from speculative.parallel.hf_weights import HFWeights

    w = HFWeights(spec_tiny_target_dir)
    full = load_file(str(spec_tiny_target_dir / "model.safetensors"))["model.layers.0.mlp.down_proj.weight"]
    halves = [w.get("model.layers.0.mlp.down_proj.weight", dim=1, part=p, parts=2) for p in range(2)]
    assert torch.equal(torch.cat(halves, 1), full)
    with pytest.raises(ValueError, match="not divisible"):
        w.get("model.layers.0.mlp.down_proj.weight", dim=1, part=0, parts=3)
    with pytest.raises(KeyError, match="not in checkpoint"):
        w.get("no.such.weight")


def test_tp_size_must_divide_kv_heads():
    from types import SimpleNamespace

    from speculative.parallel.tp_llama import TPAttention

    hf = SimpleNamespace(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=64)
    with pytest.raises(ValueError, match="must divide"):  # SmolLM2 cannot run TP=2
        TPAttention(hf, None, 2)


def test_dist_config_validation():
    from speculative.parallel.config import DistTrainConfig

    with pytest.raises(ValueError, match="offline_dir"):
        build_config(DistTrainConfig, {"target_kind": "offline"})
    with pytest.raises(ValueError, match="target_kind=tp"):
        build_config(DistTrainConfig, {"parallel": {"tp": 2}})
    with pytest.raises(ValueError, match="unknown key .parallel.pp"):
        build_config(DistTrainConfig, {"parallel": {"pp": 2}})


def test_rank_schedule_partitions_the_single_process_order():
    from speculative.data.dataset import BatchSchedule, Example
    from speculative.parallel.fsdp import RankSchedule

    examples = [Example(torch.arange(i + 2), torch.ones(i + 2, dtype=torch.bool)) for i in range(10)]
    base = BatchSchedule(examples, 1, seed=3)
    ranks = [RankSchedule(base, r, 2) for r in range(2)]
    # rank r at position p == single process position 2p + r
    for p in range(7):
        for r in range(2):
            assert torch.equal(ranks[r].batch(p).input_ids, base.batch(2 * p + r).input_ids)
