import pytest

from sopr_rag.retrieval.fusion import minmax, rrf


def test_rrf_matches_hand_computation():
    fused = dict(rrf([["a", "b", "c"], ["b", "c"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert [d for d, _ in rrf([["a", "b", "c"], ["b", "c"]])] == ["b", "c", "a"]


def test_rrf_ignores_duplicates_within_a_list_and_is_deterministic_on_ties():
    assert dict(rrf([["a", "a", "b"]], k=0)) == {"a": 1.0, "b": 0.5}
    assert [d for d, _ in rrf([["x", "y"], ["y", "x"]])] == ["x", "y"]
    with pytest.raises(ValueError):
        rrf([["a"]], k=-1)


def test_minmax():
    assert minmax({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 5.0, "b": 5.0}) == {"a": 1.0, "b": 1.0}
    assert minmax({}) == {}
