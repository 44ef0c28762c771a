import math

import pytest

from sopr_rag.retrieval.lexical import BM25Index, tokenize

DOCS = {
    "reload": "Alertmanager failed reload: the config-reloader sidecar cannot reload alertmanager.yaml",
    "crash": "KubePodCrashLooping: a pod is restarting repeatedly; check the container logs",
    "disk": "Node filesystem almost full: free disk space on the node or grow the volume",
    "net": "Network transmit errors on the node interface; check cables and drivers",
}


def naive_bm25(query, docs, k1=1.2, b=0.75):
    """Lucene BM25 (the bm25s default) written out from the formula."""
    toks = {d: tokenize(t) for d, t in docs.items()}
    n, avgdl = len(toks), sum(len(t) for t in toks.values()) / len(toks)
    scores = {}
    for d, dt in toks.items():
        s = 0.0
        for q in set(tokenize(query)):
            df = sum(1 for t in toks.values() if q in t)
            tf = dt.count(q)
            if not df or not tf:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf / (tf + k1 * (1 - b + b * len(dt) / avgdl))
        if s > 0:
            scores[d] = s
    return scores


def test_tokenize_splits_identifiers_and_stems():
    toks = tokenize("AlertmanagerFailedReload on kube_pod_status; pods are restarting")
    for t in ("alertmanagerfailedreload", "alertmanag", "fail", "reload", "kube", "pod", "status", "restart"):
        assert t in toks
    assert "are" not in toks and "on" not in toks


@pytest.mark.parametrize("query", ["pod restarting crash", "alertmanager reload config", "node disk full",
                                   "errors on the node network"])
def test_scores_match_naive_formula(query):
    idx = BM25Index().build(list(DOCS), list(DOCS.values()))
    got = dict(idx.search(query, k=10))
    want = naive_bm25(query, DOCS)
    assert got.keys() == want.keys()
    for d in want:
        assert got[d] == pytest.approx(want[d], rel=1e-4)


def test_save_load_roundtrip_and_edge_cases(tmp_path):
    idx = BM25Index().build(list(DOCS), list(DOCS.values()))
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    assert again.search("crash looping pod", 2) == idx.search("crash looping pod", 2)
    assert idx.search("zzzunknownword", 5) == []
    assert BM25Index().build([], []).search("pod", 3) == []
    with pytest.raises(ValueError):
        BM25Index().build(["a", "a"], ["x", "y"])
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path / "missing")
