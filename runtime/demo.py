"""`python -m runtime.demo`: which offline assets are here, then one real chat turn with SmolLM2."""

from __future__ import annotations

import argparse
import time

from runtime.assets import asset_status
from runtime.device import pick_device, set_threads
from runtime.llm import SamplingParams, make_backend


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m runtime.demo")
    ap.add_argument("--prompt", default="In two sentences, what is speculative decoding?")
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args(argv)

    set_threads()
    print("== assets")
    for name, status in asset_status().items():
        print(f"  {name:30s} {'found' if status == 'ok' else 'MISSING: ' + status}")
    print(f"== chat ({args.backend}, SmolLM2-135M-Instruct, device {pick_device()})")
    t0 = time.perf_counter()
    llm = make_backend(args.backend)
    t1 = time.perf_counter()
    gen = llm.generate([[{"role": "user", "content": args.prompt}]], SamplingParams(max_new_tokens=args.max_new_tokens))[0]
    t2 = time.perf_counter()
    print(f"  user:      {args.prompt}")
    print(f"  assistant: {gen.text.strip()}")
    print(f"  load {t1 - t0:.1f} s, {len(gen.token_ids)} tokens in {t2 - t1:.2f} s "
          f"({len(gen.token_ids) / max(t2 - t1, 1e-9):.1f} tok/s), finish={gen.finish_reason}")


if __name__ == "__main__":
    main()
