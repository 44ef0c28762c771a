"""torchrun worker (3 ranks): the real SmolLM2 as a TP=3 megatron target vs the HF model (TP=2 is impossible:
3 key/value heads). argv: output JSON path; rank 0 writes the max abs errors."""

import json
import sys

import torch

from runtime.distributed import destroy, init_distributed, init_tensor_parallel


def main(out: str) -> None:
    from runtime.assets import load_model, load_tokenizer
    from speculative.parallel.tp_target import TPTargetBackend
    from speculative.target.backend import HFTargetBackend

    info = init_distributed()
    init_tensor_parallel(3)
    tok = load_tokenizer("smollm2-135m-instruct")
    text = tok.apply_chat_template([{"role": "user", "content": "Name three rivers in Europe."}], tokenize=False,
                                   add_generation_prompt=True) + "The Danube, the Rhine and the Seine."
    ids = torch.tensor([tok(text)["input_ids"]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    t2d = torch.zeros(49152, dtype=torch.bool)
    t2d[:: 7] = True
    a = TPTargetBackend("smollm2-135m-instruct").forward(ids, mask, t2d)
    b = HFTargetBackend(load_model("smollm2-135m-instruct")).forward(ids, mask, t2d)
    errs = {k: float((getattr(a, k) - getattr(b, k)).abs().max()) for k in ("aux_hidden", "last_hidden", "target_probs")}
    errs |= {f"scale_{k}": float(getattr(b, k).abs().max()) for k in ("aux_hidden", "last_hidden")}
    if info.rank == 0:
        with open(out, "w") as fh:
            json.dump(errs, fh)
    destroy()


if __name__ == "__main__":
    main(sys.argv[1])
