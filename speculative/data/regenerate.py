"""Optional: regenerate assistant turns with the target itself, so the draft learns the target's own
distribution (EAGLE practice). Any runtime.llm backend works (HF, vLLM, OpenAI-compatible server).

Output is JSONL ({"id", "messages"}), appended and flushed per conversation; a restarted run skips ids
already written, so an interrupted regeneration resumes where it stopped.

    python -m speculative.data.regenerate --out regen.jsonl --limit 500 --backend vllm --max-new-tokens 256
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from runtime.llm import LLMBackend, SamplingParams
from runtime.logging import JsonlWriter, progress, read_jsonl


def regenerate(conversations: Sequence[list[dict[str, str]]], backend: LLMBackend, out_path: str | Path,
               params: SamplingParams, *, batch_size: int = 8, ids: Sequence[str] | None = None) -> int:
    """Replace every assistant turn by the backend's reply to the (regenerated) history; returns #written."""
    out_path = Path(out_path)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(conversations))]
    done = {r["id"] for r in read_jsonl(out_path)} if out_path.is_file() else set()
    todo = [(i, [dict(m) for m in c]) for i, c in zip(ids, conversations) if i not in done]
    written = 0
    with JsonlWriter(out_path) as writer:
        for start in progress(range(0, len(todo), batch_size), desc="regenerate"):
            chunk = todo[start:start + batch_size]
            longest = max(len(c) for _, c in chunk)
            for turn in range(longest):  # turn by turn so later prompts see regenerated history
                need = [c for _, c in chunk if turn < len(c) and c[turn]["role"] == "assistant"]
                if need:
                    replies = backend.generate([c[:turn] for c in need], params)
                    for c, r in zip(need, replies):
                        c[turn]["content"] = r.text
            for cid, c in chunk:
                # an empty regenerated reply would make the record malformed; keep it out
                if all(m["content"].strip() for m in c):
                    writer.write({"id": cid, "messages": c})
                    written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    from runtime.llm import make_backend
    from speculative.data.records import load_conversations

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="sharegpt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    convs, skips = load_conversations(args.source, limit=args.limit)
    backend = make_backend(args.backend, model=args.model)
    n = regenerate(convs, backend, args.out, SamplingParams(max_new_tokens=args.max_new_tokens),
                   batch_size=args.batch_size)
    print(f"wrote {n} conversations to {args.out} (skipped on input: {dict(skips)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
