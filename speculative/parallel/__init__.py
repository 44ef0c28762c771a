"""Hybrid parallelism: megatron-core TP target + FSDP2 data-parallel draft (SpecForge's decoupling).

Pipeline order: config.py -> hf_weights.py (sharded checkpoint reads) -> tp_llama.py (TP decoder)
-> tp_target.py (TP TargetBackend + the TP-then-resplit batch flow) -> fsdp.py (FSDP2 draft trainer)
-> build.py (assemble a run from the config) -> run.py (the distributed path of `python -m speculative train`).
"""
