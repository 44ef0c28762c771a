"""Checkpoints: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is a directory `step_00000100/` holding `<name>.safetensors` files, `state.json` and
`checksums.json` (size + sha256 of every other file, recorded at write time). It is written as
`step_00000100.tmp-<pid>/` and renamed into place only when complete, so a crash mid-write leaves the
previous checkpoint untouched and the half-written one is ignored and swept. A checkpoint damaged after
it was written (truncated, bit rot) fails verification on load: `load()` names the bad file, moves the
folder aside (`step_00000100.corrupt-<time>`) and resumes from the newest older one that verifies.
Nested state (optimizer/scheduler state dicts, RNG states) is flattened: tensors go to safetensors,
the structure goes to JSON with `{"__tensor__": key}` placeholders.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from runtime.logging import get_logger

log = get_logger("runtime.checkpoint")
_STEP_RE = re.compile(r"^step_(\d{8})$")
CHECKSUMS = "checksums.json"


class CheckpointCorruptError(RuntimeError):
    """A checkpoint (or every checkpoint in a folder) failed verification; the message names the files."""


# ----------------------------------------------------------------------------- atomic files
def _default_mode() -> int:
    """What open() would give a new file (0666 minus umask): mkstemp's 0600 is too private for results."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_replace(path: str | Path, write_tmp: Callable[[str], None]) -> Path:
    """Run `write_tmp(tmp)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_tmp(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder + fsync + rename."""
    return _atomic_replace(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> Path:
    """safetensors.save_file through a temp file (contiguous, shared storage broken up)."""
    clean = {k: v.detach().contiguous().clone() if _shares_storage(v, tensors) else v.detach().contiguous()
             for k, v in tensors.items()}
    return _atomic_replace(path, lambda tmp: save_file(clean, tmp, metadata=metadata))


def _shares_storage(t: torch.Tensor, all_tensors: dict[str, torch.Tensor]) -> bool:
    ptr = t.untyped_storage().data_ptr()
    return sum(1 for o in all_tensors.values() if o.untyped_storage().data_ptr() == ptr) > 1


# ----------------------------------------------------------------------------- file digests
def file_digest(path: str | Path) -> dict[str, Any]:
    """{"size": bytes, "sha256": hex} of a file, streamed (checkpoints can be large)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}


def verify_file(path: str | Path, expected: dict[str, Any]) -> str | None:
    """None when `path` has the recorded size and sha256, else why not (names the file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        return f"{path}: cannot read ({err.strerror or err})"
    if size != expected.get("size"):  # cheap check first: truncation is the common damage
        return f"{path}: size {size} bytes, {expected.get('size')} recorded at write time"
    if file_digest(path)["sha256"] != expected.get("sha256"):
        return f"{path}: sha256 differs from the one recorded at write time"
    return None


def _json_digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def write_checksums(folder: Path) -> Path:
    """Record size + sha256 of every file in `folder` in `folder/checksums.json` (self-checked)."""
    files = {p.name: file_digest(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS}
    return atomic_write_json(folder / CHECKSUMS, {"files": files, "digest": _json_digest(files)})


def verify_checksums(folder: Path) -> str | None:
    """None when every file recorded in `folder/checksums.json` is intact, else the first problem.

    A folder without checksums.json (written before checksums existed) is not judged here: loading
    it is its only check."""
    path = folder / CHECKSUMS
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        files = record["files"]
        if _json_digest(files) != record["digest"]:
            return f"{path}: its own digest does not match (damaged)"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{path}: unreadable ({err})"
    for name, expected in files.items():
        problem = verify_file(folder / name, expected)
        if problem:
            return problem
    return None


# ----------------------------------------------------------------------------- nested state
def flatten_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure into (JSON-able skeleton, {key: tensor})."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            key = path or "root"
            tensors[key] = o.detach().cpu()
            return {"__tensor__": key}
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if not isinstance(k, (str, int)):
                    raise TypeError(f"unsupported dict key type {type(k).__name__} at {path!r}")
                tag = f"i:{k}" if isinstance(k, int) else f"s:{k}"
                out[tag] = walk(v, f"{path}.{k}" if path else str(k))
            return {"__dict__": out}
        if isinstance(o, (list, tuple)):
            items = [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(o)]
            return {"__tuple__": items} if isinstance(o, tuple) else items
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        raise TypeError(f"cannot checkpoint value of type {type(o).__name__} at {path!r}")

    return walk(obj, prefix), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            if "__tensor__" in o:
                return tensors[o["__tensor__"]]
            if "__dict__" in o:
                return {(int(k[2:]) if k.startswith("i:") else k[2:]): walk(v) for k, v in o["__dict__"].items()}
            if "__tuple__" in o:
                return tuple(walk(v) for v in o["__tuple__"])
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(skeleton)


# ----------------------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    state: dict[str, Any] = {
        "python": _py_random_to_json(random.getstate()),
        "numpy": _np_random_to_json(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(_py_random_from_json(state["python"]))
    np.random.set_state(_np_random_from_json(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _py_random_to_json(s: tuple) -> list:
    return [s[0], list(s[1]), s[2]]


def _py_random_from_json(s: list) -> tuple:
    return (s[0], tuple(s[1]), s[2])


def _np_random_to_json(s: tuple) -> dict:
    return {"kind": s[0], "keys": torch.from_numpy(s[1].astype("int64")), "pos": int(s[2]),
            "has_gauss": int(s[3]), "gauss": float(s[4])}


def _np_random_from_json(s: dict) -> tuple:
    import numpy as np

    return (s["kind"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["gauss"])


# ----------------------------------------------------------------------------- manager
@dataclass
class LoadedCheckpoint:
    step: int
    path: Path
    tensors: dict[str, dict[str, torch.Tensor]]  # file name -> tensors (e.g. "model" -> state_dict)
    state: dict[str, Any]  # JSON state with nested tensors restored
    skipped: list[str] = field(default_factory=list)  # newer checkpoints that failed verification, and why


class CheckpointManager:
    """Numbered checkpoints in one folder, atomic, with rotation (`keep` newest are kept)."""

    def __init__(self, directory: str | Path, *, keep: int = 3):
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.dir = Path(directory)
        self.keep = keep

    def steps(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _STEP_RE.match(p.name)
            if m and p.is_dir() and (p / "state.json").is_file():
                out.append(int(m.group(1)))
        return sorted(out)

    def path_for(self, step: int) -> Path:
        return self.dir / f"step_{step:08d}"

    def save(self, step: int, *, tensors: dict[str, dict[str, torch.Tensor]] | None = None,
             state: dict[str, Any] | None = None) -> Path:
        """Write checkpoint `step`: `tensors` = {file name: flat tensor dict}, `state` = nested state."""
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.path_for(step)
        tmp = self.dir / f"{final.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            for name, flat in (tensors or {}).items():
                atomic_save_tensors(tmp / f"{name}.safetensors", flat)
            skeleton, nested = flatten_state(state or {})
            if nested:
                atomic_save_tensors(tmp / "state.safetensors", nested)
            atomic_write_json(tmp / "state.json", {"step": step, "state": skeleton})
            write_checksums(tmp)  # last: a folder is only complete with its checksums
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._rotate()
        return final

    def verify(self, step: int) -> str | None:
        """None when checkpoint `step` is intact (recorded sizes and checksums match), else why not."""
        path = self.path_for(step)
        if not (path / "state.json").is_file():
            return f"{path}: state.json missing"
        return verify_checksums(path)

    def load(self, step: int | None = None, *, map_location: str = "cpu",
             quarantine: bool = True) -> LoadedCheckpoint | None:
        """Load `step`, or by default the newest checkpoint that verifies; None when there is none.

        A newer checkpoint that fails verification (or cannot be read) is named in a warning, moved
        aside when `quarantine` (so rotation and later resumes never pick it) and skipped. An explicit
        `step` that fails raises CheckpointCorruptError; so does a folder where no checkpoint verifies."""
        steps = self.steps()
        if step is not None:
            if step not in steps:
                raise FileNotFoundError(f"no complete checkpoint at {self.path_for(step)}")
            return self._load_verified(step, map_location)
        skipped: list[str] = []
        for s in reversed(steps):
            try:
                ck = self._load_verified(s, map_location)
            except CheckpointCorruptError as err:
                skipped.append(str(err))
                log.warning("skipping corrupt checkpoint: %s", err)
                if quarantine:
                    self._quarantine(s)
                continue
            if skipped:
                log.warning("resuming from %s instead of the newest checkpoint", ck.path)
            ck.skipped = skipped
            return ck
        if skipped:
            raise CheckpointCorruptError(f"no checkpoint under {self.dir} verifies: " + "; ".join(skipped)
                                         + ". Move them away to start from scratch.")
        return None

    def _load_verified(self, step: int, map_location: str) -> LoadedCheckpoint:
        path = self.path_for(step)
        problem = self.verify(step)
        if problem:
            raise CheckpointCorruptError(problem)
        try:  # also catches damage in a checkpoint written before checksums were recorded
            meta = json.loads((path / "state.json").read_text())
            nested = load_file(str(path / "state.safetensors"), device=map_location) \
                if (path / "state.safetensors").exists() else {}
            tensors = {p.stem: load_file(str(p), device=map_location)
                       for p in sorted(path.glob("*.safetensors")) if p.name != "state.safetensors"}
            return LoadedCheckpoint(step=meta["step"], path=path, tensors=tensors,
                                    state=unflatten_state(meta["state"], nested))
        except Exception as err:  # noqa: BLE001 - safetensors/JSON/IO errors all mean the same here
            raise CheckpointCorruptError(f"{path}: cannot be loaded ({type(err).__name__}: {err})") from err

    def _quarantine(self, step: int) -> None:
        src = self.path_for(step)
        try:
            os.replace(src, src.with_name(f"{src.name}.corrupt-{int(time.time())}"))
        except OSError:  # another rank moved it first, or the folder is read-only: skipping is enough
            pass

    def _rotate(self) -> None:
        for step in self.steps()[: -self.keep]:
            shutil.rmtree(self.path_for(step), ignore_errors=True)
        for p in self.dir.glob("step_*.tmp-*"):  # leftovers of crashed writers
            try:
                pid = int(p.name.rsplit("-", 1)[1])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_torch_file(path: str | Path) -> Any:
    """The one place torch pickles are read: weights_only=True, never arbitrary code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rescale_base_lr(optimizer: torch.optim.Optimizer, scheduler: Any, lr: float) -> float:
    """Apply a changed base learning rate to a resumed optimizer + scheduler; returns the old base lr.

    For schedulers whose lr is base_lr * f(step) (LambdaLR: cosine / linear with warmup): every
    group's lr, initial_lr and the scheduler's base_lrs are scaled by lr / old, so the schedule
    continues from the same step at the new peak instead of the checkpoint's."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a finite number > 0, got {lr}")
    old = float(scheduler.base_lrs[0])
    ratio = lr / old
    scheduler.base_lrs = [b * ratio for b in scheduler.base_lrs]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * ratio
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * ratio
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]  # what get_last_lr() reports
    return old
