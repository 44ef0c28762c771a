"""`python -m runtime demo`: which offline assets are here, then one real chat turn with SmolLM2."""

from __future__ import annotations

import time
from typing import Literal

from runtime.assets import asset_status
from runtime.config import StrictModel, config_from_cli
from runtime.device import pick_device, set_threads
from runtime.llm import SamplingParams, make_backend


class RuntimeDemoConfig(StrictModel):
    prompt: str = "In two sentences, what is speculative decoding?"
    backend: Literal["hf", "vllm"] = "hf"
    max_new_tokens: int = 64


def main(argv: list[str] | None = None) -> int:
    args = config_from_cli(RuntimeDemoConfig, argv, description=__doc__, example="backend=vllm")

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
    return 0
