"""Old command lines: `python -m speculative.train_dist ...` is `python -m speculative train ...`
(use `torchrun --nproc_per_node=N -m speculative train ...` for several ranks)."""

from speculative.train.run import main

if __name__ == "__main__":
    raise SystemExit(main())
