"""Execute the reproduction notebooks with nbclient and save them with their outputs.

    python experiments/run_notebooks.py [--live tiny|small|off] [--results DIR] [--out-dir DIR] [names...]

--live tiny (default, CI): each notebook runs a seconds-to-a-minute live step and shows the latest results;
--live small: each notebook runs `make repro-<paper> SCALE=small` first (long). Saved atomically, so a
failed run never leaves a half-written notebook; a failing cell exits non-zero and names the notebook.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from runtime.checkpoint import atomic_write_text  # noqa: E402

NOTEBOOKS = ("speculative", "sopr_rag", "sparse_align")


def execute(name: str, live: str, results: str | None, out_dir: Path, timeout: int) -> Path:
    src = REPO / "experiments" / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(src, as_version=4)
    os.environ["NOTEBOOK_LIVE"] = live  # the kernel inherits the environment
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if results:
        os.environ["EXPERIMENTS_RESULTS_DIR"] = str(Path(results).resolve())
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    out = out_dir / f"{name}.ipynb"
    atomic_write_text(out, nbformat.writes(nb))
    out.chmod(0o644)  # a normal repo file, not the private temp file mode atomic writes start from
    print(f"{name}: executed in {time.perf_counter() - t0:.0f} s -> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"any of {NOTEBOOKS} (default: all)")
    ap.add_argument("--live", choices=["tiny", "small", "off"], default="tiny")
    ap.add_argument("--results", default=None, help="result JSON folder (default experiments/results)")
    ap.add_argument("--out-dir", default=str(REPO / "experiments" / "notebooks"))
    ap.add_argument("--timeout", type=int, default=None, help="per-cell seconds (default: none for small, 900)")
    args = ap.parse_args(argv)
    unknown = set(args.names) - set(NOTEBOOKS)
    if unknown:
        ap.error(f"unknown notebooks {sorted(unknown)}; expected {NOTEBOOKS}")
    timeout = args.timeout or (-1 if args.live == "small" else 900)
    failed = []
    for name in args.names or NOTEBOOKS:
        try:
            execute(name, args.live, args.results, Path(args.out_dir), timeout)
        except CellExecutionError as err:
            print(f"{name}: a cell failed\n{str(err)[-3000:]}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
