"""`python -m experiments.report [--claims experiments/claims.yaml] [--results DIR] [--out experiments/REPORT.md]`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.report.claims import load_claims
from experiments.report.render import render_report
from runtime.checkpoint import atomic_write_text
from runtime.config import ConfigError
from runtime.paths import repo_root, results_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__)
    ap.add_argument("--claims", default=str(repo_root() / "experiments" / "claims.yaml"))
    ap.add_argument("--results", default=str(results_dir()))
    ap.add_argument("--out", default=str(repo_root() / "experiments" / "REPORT.md"))
    args = ap.parse_args(argv)
    try:
        claims = load_claims(args.claims)
        text = render_report(claims, Path(args.results))
    except (ConfigError, ValueError) as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    atomic_write_text(args.out, text)
    Path(args.out).chmod(0o644)  # atomic writes start from a private temp file; this one is for everyone
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
