import numpy as np
import pytest

from sopr_rag.retrieval.dense import DenseIndex
from sopr_rag.retrieval.embedder import HashingEmbedder, embed

TEXTS = {f"p{i}": t for i, t in enumerate([
    "restart the crashing pod and read its logs", "free disk space on the node filesystem",
    "alertmanager config reload failed", "etcd member has no leader", "prometheus target is down",
    "kubelet certificate expires soon", "network interface transmit errors", "pod cannot pull its image"])}


def brute_force(emb, query, ids, k):
    m = emb([TEXTS[i] for i in ids])
    q = emb([query])[0]
    s = m @ q
    order = np.argsort(-s, kind="stable")[:k]
    return [(ids[j], float(s[j])) for j in order]


def test_search_matches_brute_force_after_remove_and_readd():
    emb = HashingEmbedder(64)
    idx = DenseIndex(emb)
    idx.add(list(TEXTS), list(TEXTS.values()))
    for q in ["pod logs crashing", "disk full node", "certificate"]:
        got, want = idx.search(q, 3), brute_force(emb, q, list(TEXTS), 3)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    idx.remove(["p0", "missing"])
    assert "p0" not in idx and len(idx) == 7
    assert all(d != "p0" for d, _ in idx.search("restart the crashing pod and read its logs", 8))
    idx.add(["p0"], [TEXTS["p0"]])
    assert idx.search(TEXTS["p0"], 1)[0] == ("p0", pytest.approx(1.0, abs=1e-5))


def test_save_load_roundtrip(tmp_path):
    emb = HashingEmbedder(64)
    idx = DenseIndex(emb)
    idx.add(list(TEXTS), list(TEXTS.values()))
    idx.remove(["p3"])
    idx.save(tmp_path / "dense")
    again = DenseIndex.load(tmp_path / "dense", emb)
    assert again.search("etcd leader", 4) == idx.search("etcd leader", 4)
    again.add(["new"], ["brand new passage about etcd leader"])  # ids keep counting after load
    assert again.search("brand new passage about etcd leader", 1)[0][0] == "new"
    with pytest.raises(ValueError):
        idx.add(["a"], ["x", "y"])


def test_real_minilm_embeddings_are_normalised_and_semantic():
    vecs = embed(["the pod keeps restarting", "container is crash looping", "invoice payment terms"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert np.array_equal(embed(["the pod keeps restarting"])[0], vecs[0])  # cached, identical
