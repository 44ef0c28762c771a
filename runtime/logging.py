"""Logging, progress bars and the JSONL metrics writer used by every long loop."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_CONFIGURED = False


def get_logger(name: str) -> logging.Logger:
    """A logger writing `time level name: message` to stderr (configured once, LLMSYS_LOG_LEVEL)."""
    global _CONFIGURED
    if not _CONFIGURED:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("llmsys")
        root.addHandler(handler)
        root.setLevel(os.environ.get("LLMSYS_LOG_LEVEL", "INFO").upper())
        root.propagate = False
        _CONFIGURED = True
    return logging.getLogger(f"llmsys.{name}")


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: int | None = None,
             disable: bool | None = None, **kw: Any) -> Iterator[T]:
    """tqdm with project defaults; LLMSYS_NO_PROGRESS=1 silences every bar (tests, CI logs)."""
    if disable is None:
        disable = os.environ.get("LLMSYS_NO_PROGRESS", "0") == "1"
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kw)


class JsonlWriter:
    """Append-only JSONL writer, flushed per record so a crash loses at most the line being written."""

    def __init__(self, path: str | Path, *, append: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a" if append else "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=_json_default) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MetricsWriter(JsonlWriter):
    """JSONL metrics (`{"step":..., "time":..., **metrics}`) with an optional TensorBoard mirror."""

    def __init__(self, path: str | Path, *, tensorboard_dir: str | Path | None = None, append: bool = True):
        super().__init__(path, append=append)
        self._tb = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(tensorboard_dir))

    def log(self, step: int, **metrics: Any) -> None:
        self.write({"step": step, "time": time.time(), **metrics})
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        super().close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a truncated last line (crash mid-write) is ignored, other bad lines raise."""
    rows: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}:{i + 1}: not valid JSON") from None
    return rows


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
