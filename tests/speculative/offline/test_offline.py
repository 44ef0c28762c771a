"""Offline hidden states: format + manifest, hash checks and rewrite, resume after an abort, online == offline."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from runtime.config import build_config
from tests.speculative.offline.chats import write_chats

N_SEQ, SHARD = 8, 3  # 3 shards: 3 + 3 + 2 sequences


def data_cfg(chats: Path) -> dict:
    return {"source": str(chats), "limit": None, "max_length": 64, "draft_vocab_size": 64}


def prepare(model_dir: Path, chats: Path, out: Path, dtype: str = "fp32", **kw):
    from speculative.offline.config import HiddenStatesConfig
    from speculative.offline.prepare import prepare_hidden_states

    cfg = build_config(HiddenStatesConfig, {"data": data_cfg(chats), "target": {"model": str(model_dir)},
                                       "out_dir": str(out), "storage_dtype": dtype, "shard_size": SHARD,
                                       "batch_size": 2, "threads": 1})
    return prepare_hidden_states(cfg, **kw)


@pytest.fixture(scope="module")
def prepared(spec_tiny_target_dir, tmp_path_factory):
    """(model dir, chats, fp32 shard folder, its report) built once; tests copy the folder to damage it."""
    root = tmp_path_factory.mktemp("offline")
    chats = write_chats(root / "chats.jsonl", N_SEQ)
    report = prepare(spec_tiny_target_dir, chats, root / "hs")
    return spec_tiny_target_dir, chats, root / "hs", report


def shard_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.glob("shard_*.safetensors"))}


def test_shards_manifest_and_contents(prepared):
    from speculative.offline.shards import bytes_per_token, sha256_file
    from speculative.target.backend import HFTargetBackend

    model_dir, _, hs, report = prepared
    manifest = json.loads((hs / "manifest.json").read_text())
    assert report["written"] == manifest["num_shards"] == 3 and report["reused"] == 0
    assert [e["sequences"] for e in manifest["shards"].values()] == [3, 3, 2]
    assert sum(e["tokens"] for e in manifest["shards"].values()) == manifest["num_tokens"] == report["tokens"]
    for e in manifest["shards"].values():
        assert e["sha256"] == sha256_file(hs / e["file"])
        assert e["dtypes"] == {"input_ids": "int64", "loss_mask": "bool", "offsets": "int64",
                               "aux_hidden": "float32", "last_hidden": "float32", "target_argmax": "int32"}
    assert bytes_per_token(64, "fp32") == 4 * 64 * 4 + 13 and bytes_per_token(4096, "bf16") == 32781
    assert report["bytes_per_token_measured"] == pytest.approx(report["bytes_per_token"], rel=0.05)
    # stored states == an online forward of the unpadded sequence
    from transformers import AutoModelForCausalLM

    hf = HFTargetBackend(AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32))
    t = load_file(str(hs / "shard_00001.safetensors"))
    s, e = int(t["offsets"][1]), int(t["offsets"][2])
    ids = t["input_ids"][s:e][None]
    out = hf.forward(ids, torch.ones_like(ids, dtype=torch.bool), torch.zeros(hf.config.vocab_size, dtype=torch.bool))
    torch.testing.assert_close(t["aux_hidden"][s:e], out.aux_hidden[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(t["last_hidden"][s:e], out.last_hidden[0], atol=1e-5, rtol=1e-5)
    assert t["loss_mask"][s:e].any() and not t["loss_mask"][s:e].all()


def test_damaged_shards_are_refused_then_rewritten(prepared, tmp_path):
    from speculative.offline.backend import OfflineTargetBackend
    from speculative.offline.shards import CorruptShardError

    model_dir, chats, hs, _ = prepared
    d = shutil.copytree(hs, tmp_path / "hs")
    good = shard_bytes(d)
    flipped = bytearray(good["shard_00001.safetensors"])
    flipped[-5] ^= 0xFF  # same size, one byte of hidden state changed
    (d / "shard_00001.safetensors").write_bytes(bytes(flipped))
    (d / "shard_00002.safetensors").write_bytes(good["shard_00002.safetensors"][:100])  # truncated
    with pytest.raises(CorruptShardError, match="shard_00001"):
        OfflineTargetBackend(d)
    report = prepare(model_dir, chats, d)
    assert (report["reused"], report["rewritten"], report["written"]) == (1, 2, 0)
    assert shard_bytes(d) == good
    OfflineTargetBackend(d)  # opens cleanly again


def test_aborted_prepare_resumes_at_first_incomplete_shard(prepared, tmp_path):
    model_dir, chats, hs, _ = prepared
    d = tmp_path / "hs"

    def abort_after_first(i: int) -> None:
        if i == 0:
            raise KeyboardInterrupt  # the run dies right after shard 0 is recorded

    with pytest.raises(KeyboardInterrupt):
        prepare(model_dir, chats, d, on_shard=abort_after_first)
    assert list(json.loads((d / "manifest.json").read_text())["shards"]) == ["0"]
    (d / "shard_00001.safetensors").write_bytes(b"half a shard")  # a write cut off by the kill, not in the manifest
    seen = []
    report = prepare(model_dir, chats, d, on_shard=seen.append)
    assert seen == [1, 2] and (report["reused"], report["written"], report["rewritten"]) == (1, 2, 0)
    assert shard_bytes(d) == shard_bytes(hs)  # identical to the uninterrupted run
    with pytest.raises(ValueError, match="another target/settings"):
        prepare(model_dir, chats, d, dtype="bf16")  # never mixes formats in one folder


def test_grown_data_reuses_the_unchanged_shards(prepared, tmp_path):
    """Rows appended to the data: full shards of the old rows are kept byte for byte, the rest is written,
    and the folder equals a fresh preparation of the grown data."""
    model_dir, chats, hs, _ = prepared
    d = shutil.copytree(hs, tmp_path / "hs")
    old = shard_bytes(d)
    manifest = json.loads((d / "manifest.json").read_text())
    for e in manifest["shards"].values():
        e.pop("data", None)  # as written before per-shard fingerprints: read back from the shard
    (d / "manifest.json").write_text(json.dumps(manifest))
    grown = write_chats(tmp_path / "grown.jsonl", N_SEQ + 3)  # 11 rows: shards 3 + 3 + 3 + 2
    assert grown.read_text().startswith(chats.read_text())
    report = prepare(model_dir, grown, d)
    assert (report["reused"], report["rewritten"], report["written"]) == (2, 1, 1)  # shard 2 had 2 rows, now 3
    new = shard_bytes(d)
    assert {k: new[k] for k in ("shard_00000.safetensors", "shard_00001.safetensors")} == \
        {k: old[k] for k in ("shard_00000.safetensors", "shard_00001.safetensors")}
    fresh = tmp_path / "fresh2"
    prepare(model_dir, grown, fresh)
    assert shard_bytes(d) == shard_bytes(fresh)
    assert json.loads((d / "manifest.json").read_text())["num_sequences"] == N_SEQ + 3
    shrunk = prepare(model_dir, chats, d)  # back to the 8 rows: the 4th shard is dropped, shard 2 rewritten
    assert (shrunk["reused"], shrunk["rewritten"], shrunk["written"]) == (2, 1, 0)
    assert list(json.loads((d / "manifest.json").read_text())["shards"]) == ["0", "1", "2"]


def train_losses(model_dir: Path, chats: Path, out: Path, **kw) -> list[float]:
    from runtime.distributed import destroy
    from speculative.parallel.build import build_dist_training
    from speculative.parallel.config import DistTrainConfig

    cfg = build_config(DistTrainConfig, {
        "data": data_cfg(chats), "target": {"model": str(model_dir)}, "max_steps": 3, "ttt_length": 3,
        "optim": {"batch_size": 2, "grad_accum": 1, "warmup_steps": 0}, "tensorboard": False, "export": False,
        "ckpt_every": 100, "seed": 5, "threads": 1, "out_dir": str(out), **kw})
    try:
        return [r["loss"] for r in build_dist_training(cfg).train()]
    finally:
        destroy()


def test_online_and_offline_training_give_the_same_loss(prepared, tmp_path):
    from speculative.offline.backend import OfflineTargetBackend

    model_dir, chats, hs, _ = prepared
    online = train_losses(model_dir, chats, tmp_path / "online")
    offline = train_losses(model_dir, chats, tmp_path / "offline", target_kind="offline", offline_dir=str(hs))
    assert len(online) == 3 and online[0] != online[2]
    assert offline == pytest.approx(online, rel=1e-5, abs=1e-5)
    # bf16 storage: same data path, small quantisation error
    prepare(model_dir, chats, tmp_path / "hs_bf16", dtype="bf16")
    bf16 = train_losses(model_dir, chats, tmp_path / "bf16", target_kind="offline", offline_dir=str(tmp_path / "hs_bf16"))
    assert bf16 == pytest.approx(online, rel=1e-2)
    backend = OfflineTargetBackend(hs)
    with pytest.raises(KeyError, match="not in the offline shards"):
        no_vocab = torch.zeros(backend.config.vocab_size, dtype=torch.bool)
        backend.forward(torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.bool), no_vocab)


def test_bf16_precision_trains_like_fp32(prepared, tmp_path):
    """precision=bf16: autocast on CPU (linears, attention, the soft-CE GEMMs in bf16), lengths padded to 64."""
    model_dir, chats, hs, _ = prepared
    fp32 = train_losses(model_dir, chats, tmp_path / "fp32", target_kind="offline", offline_dir=str(hs))
    bf16 = train_losses(model_dir, chats, tmp_path / "bf16", target_kind="offline", offline_dir=str(hs),
                        precision="bf16")
    assert bf16 != fp32  # really ran in bf16
    assert bf16 == pytest.approx(fp32, rel=2e-2)


def test_offline_training_needs_no_transformers_model_code(prepared, tmp_path):
    """The manifest records the tokenizer facts and config.json is read directly: an offline run imports no
    transformers model module (their generation stack is ~250 MB of resident memory)."""
    from runtime.assets import load_tokenizer
    from speculative.offline.backend import OfflineTargetBackend, StoredTokenizer, stored_tokenizer_info

    model_dir, chats, hs, _ = prepared
    backend = OfflineTargetBackend(hs)
    assert backend.stored_tokenizer() == StoredTokenizer(**stored_tokenizer_info(load_tokenizer(str(model_dir))))
    cfg = {"data": data_cfg(chats), "target": {"model": str(model_dir)}, "target_kind": "offline",
           "offline_dir": str(hs), "max_steps": 1, "ttt_length": 2, "tensorboard": False, "export": False,
           "threads": 1, "out_dir": str(tmp_path / "run"), "optim": {"batch_size": 2, "warmup_steps": 0}}
    script = f"""
import json, sys
from runtime.config import build_config
from speculative.parallel.build import build_dist_training
from speculative.parallel.config import DistTrainConfig
build_dist_training(build_config(DistTrainConfig, json.loads({json.dumps(json.dumps(cfg, default=str))}))).train()
print("LOADED", sorted(m for m in sys.modules if m.startswith(("transformers.models", "transformers.generation"))))
"""
    import os
    import subprocess
    import sys

    # a fresh single process: no rendezvous settings left in the environment by earlier distributed tests
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout, out.stdout[-2000:]
