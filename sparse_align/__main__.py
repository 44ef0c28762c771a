"""`python -m sparse_align <verb> [--config X.yaml | --scale small|full] [key=value ...]`

distill, train, evaluate (the single-sample comparison), timing, run (= distill + train + evaluate);
issue 14's protocol: junctions (where the one-token gain is, per detector), sweep (w on training
prompts), posttrain (the post-trained stand-in), powered (the paired, powered evaluation), run-powered
(= distill + train + powered), export-head (ship the trained head for the demo)."""

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
    parser.add_argument("command", choices=["distill", "train", "evaluate", "timing", "run", "junctions", "sweep",
                                            "posttrain", "powered", "run-powered", "export-head"],
                        help="run = distill + train + evaluate; run-powered = distill + train + powered")
    parser.add_argument("--scale", choices=["small", "full"], default="small",
                        help="picks experiments/configs/sparse_align/<scale>.yaml when --config is not given")
    parser.add_argument("--config", default=None)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLMSYS_THREADS", "1")),
                        help="torch threads (default 1: on a shared CPU more threads spin and run slower)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. eval.num_prompts=8")
    args = parser.parse_intermixed_args(argv)  # overrides may follow --config/--scale
    path = args.config or repo_root() / "experiments" / "configs" / "sia" / f"{args.scale}.yaml"
    try:
        cfg = load_config(SIAConfig, path, args.overrides)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    set_threads(args.threads)
    from sparse_align import pipeline, stages

    model, tok = pipeline.load_base(cfg)
    if args.command in ("distill", "run", "run-powered"):
        pipeline.distill(cfg, model, tok)
    if args.command in ("train", "run", "run-powered"):
        pipeline.train(cfg, model, tok)
    if args.command in ("evaluate", "run"):
        pipeline.evaluate(cfg, model, tok)
    single = {"timing": pipeline.timing, "junctions": stages.junctions, "sweep": stages.sweep,
              "posttrain": stages.posttrain, "powered": stages.powered, "run-powered": stages.powered,
              "export-head": stages.export_head}
    if args.command in single:
        single[args.command](cfg, model, tok)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
