"""`python -m sparse_align {distill,train,evaluate,timing,run} [--scale small|full] [--config X.yaml] [key=value ...]`"""

from __future__ import annotations

import argparse
import os
import sys

from runtime.config import ConfigError, load_config
from runtime.device import set_threads
from runtime.paths import repo_root
from sparse_align.config import SIAConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparse_align", description=__doc__)
    parser.add_argument("command", choices=["distill", "train", "evaluate", "timing", "run"],
                        help="run = distill + train + evaluate")
    parser.add_argument("--scale", choices=["small", "full"], default="small",
                        help="picks experiments/configs/sia/<scale>.yaml when --config is not given")
    parser.add_argument("--config", default=None)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLMSYS_THREADS", "1")),
                        help="torch threads (default 1: on a shared CPU more threads spin and run slower)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. eval.num_prompts=8")
    args = parser.parse_args(argv)
    path = args.config or repo_root() / "experiments" / "configs" / "sia" / f"{args.scale}.yaml"
    try:
        cfg = load_config(SIAConfig, path, args.overrides)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    set_threads(args.threads)
    from sparse_align import pipeline

    model, tok = pipeline.load_base(cfg)
    if args.command in ("distill", "run"):
        pipeline.distill(cfg, model, tok)
    if args.command in ("train", "run"):
        pipeline.train(cfg, model, tok)
    if args.command in ("evaluate", "run"):
        pipeline.evaluate(cfg, model, tok)
    if args.command == "timing":
        pipeline.timing(cfg, model, tok)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
