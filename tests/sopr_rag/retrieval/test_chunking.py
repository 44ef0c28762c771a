import pytest

from sopr_rag.retrieval.chunking import chunk_procedure
from sopr_rag.types import Procedure

DOC = """---
title: Pump Seal Leak
---
# Pump Seal Leak

Intro line.

## Diagnosis

Check the seal.

```shell
# not a heading: a shell comment
kubectl logs pod
```

### Pressure

Read the gauge.

## Mitigation

""" + " ".join(f"w{i}" for i in range(250))


def proc(text=DOC):
    return Procedure(doc_id="m/pump.md", title="Pump Seal Leak", text=text, content_hash="h")


def test_passages_keep_heading_paths_and_code_comments():
    ps = chunk_procedure(proc(), max_words=100, overlap=20)
    heads = [p.heading for p in ps]
    assert heads[:3] == ["Pump Seal Leak", "Pump Seal Leak > Diagnosis", "Pump Seal Leak > Diagnosis > Pressure"]
    assert "# not a heading" in ps[1].text and "kubectl logs pod" in ps[1].text
    assert all(p.text.startswith(p.heading + "\n") for p in ps)
    assert "title:" not in ps[0].text  # front matter stripped
    assert [p.passage_id for p in ps] == [f"m/pump.md#{i}" for i in range(len(ps))]


def test_long_sections_split_with_overlap_and_nothing_lost():
    ps = [p for p in chunk_procedure(proc(), max_words=100, overlap=20) if p.heading.endswith("Mitigation")]
    assert len(ps) == 3
    words = [w for p in ps for w in p.body.split()]
    assert set(words) == {f"w{i}" for i in range(250)}
    assert ps[0].body.split()[-20:] == ps[1].body.split()[:20]


def test_empty_document_and_bad_arguments():
    assert [p.heading for p in chunk_procedure(proc(""))] == ["Pump Seal Leak"]
    with pytest.raises(ValueError):
        chunk_procedure(proc(), max_words=50, overlap=50)
