import pytest
import torch

from speculative.decode.target import TargetRunner
from speculative.decode.tree import DraftTree

from .helpers import tiny_target


def _tree():
    # root -> a -> c, root -> b -> d -> e, a -> f  (parents listed first)
    tokens = torch.tensor([5, 17, 23, 99, 42, 7, 61])
    parents = [-1, 0, 0, 1, 2, 4, 1]
    depths = torch.tensor([0, 1, 1, 2, 2, 3, 2])
    return DraftTree(tokens, parents, depths)


def _kv(runner: TargetRunner) -> list[torch.Tensor]:
    """The cached keys and values of the accepted sequence, whichever backend holds them."""
    if runner.fast is not None:
        return list(runner.fast.kv[:, :, :, : runner.length].unbind(0))
    return [t for layer in runner.cache.layers for t in (layer.keys, layer.values)]


BACKENDS = pytest.mark.parametrize("backend", ["fast", "hf"])


@BACKENDS
@torch.no_grad()
def test_tree_verification_matches_per_path_recomputation(backend):
    model = tiny_target()
    prompt = torch.randint(0, 256, (11,), generator=torch.Generator().manual_seed(0))
    runner = TargetRunner(model, aux_layers=[2, 3, 3], backend=backend)
    runner.prefill(prompt)
    tree = _tree()
    out = runner.verify(tree.tokens, tree.depths, tree.ancestor_mask())
    for i in range(tree.size):
        seq = torch.cat([prompt, tree.tokens[tree.path_to(i)]])
        ref = model(seq[None], output_hidden_states=True)
        torch.testing.assert_close(out.logits[i], ref.logits[0, -1], atol=1e-4, rtol=1e-4)
        feats = torch.cat([ref.hidden_states[k][0, -1] for k in (2, 3, 3)])
        torch.testing.assert_close(out.features[i], feats, atol=1e-4, rtol=1e-4)


@BACKENDS
@torch.no_grad()
def test_commit_keeps_exactly_the_accepted_path_kv(backend):
    model = tiny_target()
    prompt = torch.randint(0, 256, (9,), generator=torch.Generator().manual_seed(1))
    tree = _tree()
    for path in ([0], [0, 1], [0, 2, 4, 5], [0, 1, 6]):
        runner = TargetRunner(model, backend=backend)
        runner.prefill(prompt)
        runner.verify(tree.tokens, tree.depths, tree.ancestor_mask())
        runner.commit(path, tree.size)
        seq = torch.cat([prompt, tree.tokens[path]])
        assert runner.length == seq.numel()
        ref = TargetRunner(model, backend=backend)
        ref.prefill(seq)
        for got, want in zip(_kv(runner), _kv(ref), strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # and decoding continues as if the prefix had been computed from scratch
        nxt = runner.step(3).logits[-1]
        torch.testing.assert_close(nxt, model(torch.cat([seq, torch.tensor([3])])[None]).logits[0, -1],
                                   atol=1e-4, rtol=1e-4)


def test_rejects_out_of_range_aux_layers():
    with pytest.raises(ValueError, match="aux layer"):
        TargetRunner(tiny_target(), aux_layers=[2, 99])
