"""Junction detectors against naive numpy, and the gain-capture measurement against naive loops."""

import numpy as np
import pytest
import torch

from sparse_align.eval.junctions import captured, gains
from sparse_align.steer.junction import detector_scores, junction, topk_junction


def _naive(logits: np.ndarray, k: int) -> dict[str, float]:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = np.sort(logits)[::-1][:k]
    q = np.exp(top - top.max())
    q /= q.sum()
    nz = p[p > 0]
    return {"topk_entropy": float(-(q * np.log(q)).sum()), "full_entropy": float(-(nz * np.log(nz)).sum()),
            "topk_mass": float(1.0 - np.sort(p)[::-1][:k].sum())}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detectors_match_numpy(seed):
    logits = np.random.default_rng(seed).normal(0, 3, 300)
    logits[:5] = -np.inf if seed == 2 else logits[:5]  # masked entries must not give nan
    t = torch.tensor(logits, dtype=torch.float32)
    top, _, _ = topk_junction(t, 10)
    got = {k: float(v) for k, v in detector_scores(t, top).items()}
    for name, want in _naive(logits, 10).items():
        assert got[name] == pytest.approx(want, rel=1e-4, abs=1e-6), name
        assert float(junction(t, 10, name)[2]) == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_detectors_batched_and_unknown():
    t = torch.randn(3, 50)
    top, _, h = topk_junction(t, 5)
    s = detector_scores(t, top)
    assert torch.allclose(s["topk_entropy"], h) and s["full_entropy"].shape == (3,)
    with pytest.raises(ValueError, match="unknown detector"):
        junction(t[0], 5, "nope")


def test_gains_match_naive():
    rng = np.random.default_rng(0)
    d, logp = rng.normal(size=(6, 4)), np.log(rng.dirichlet(np.ones(4), size=6))
    g = gains(d, logp, weight=3.0)
    for n in range(6):
        p = np.exp(logp[n]) / np.exp(logp[n]).sum()
        q = np.exp(logp[n] + 3.0 * (d[n] - d[n].mean()))
        q /= q.sum()
        assert g["max"][n] == pytest.approx(d[n].max() - p @ d[n])
        assert g["steer"][n] == pytest.approx(q @ d[n] - p @ d[n])
        assert g["steer"][n] >= -1e-12  # tilting towards higher gain never loses in expectation


def test_captured_share():
    gain = np.array([5.0, 0.0, 3.0, 1.0, 1.0])
    assert captured(gain, gain, 0.4) == pytest.approx(8 / 10)  # oracle: the two largest
    assert captured(gain, np.array([0, 9, 0, 8, 0.0]), 0.4) == pytest.approx(1 / 10)
    assert captured(gain, np.arange(5.0), 1.0) == pytest.approx(1.0)
