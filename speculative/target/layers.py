"""The one owner of the aux-hidden-state layer-id convention.

An aux layer id k means "the residual stream after k decoder layers, before the final norm", which is
vLLM's `eagle_aux_hidden_state_layer_ids` convention and HF's `output_hidden_states[k]` for k < L.
The EAGLE-3 default is [2, L//2, L-3]: the outputs of 0-based decoder layers 1, L//2-1 and L-4.
"""

from __future__ import annotations

from collections.abc import Sequence


def default_aux_layer_ids(num_layers: int) -> list[int]:
    if num_layers < 4:
        raise ValueError(f"EAGLE-3 aux states need a target with >= 4 layers, got {num_layers}")
    return [2, num_layers // 2, num_layers - 3]


def resolve_aux_layer_ids(num_layers: int, ids: Sequence[int] | None = None) -> list[int]:
    """`ids` (vLLM convention) checked against the target depth, or the default when None."""
    if ids is None:
        return default_aux_layer_ids(num_layers)
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 < i < num_layers]
    if bad:  # id L would be the final *normed* state in HF, which is not what vLLM captures
        raise ValueError(f"aux layer ids {bad} outside [1, {num_layers - 1}] for a {num_layers}-layer target")
    if len(ids) != 3:
        raise ValueError(f"EAGLE-3 uses exactly 3 aux hidden states, got {len(ids)} ids")
    return ids
