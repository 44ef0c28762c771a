import json

from runtime.config import StrictModel
from runtime.results import write_result


class Cfg(StrictModel):
    lr: float = 0.1


def test_write_result_has_provenance(tmp_path):
    p = write_result("exp", {"mrr": 0.5}, config=Cfg(), seed=3, wall_time_s=1.5, out_dir=tmp_path, scale="small")
    d = json.loads(p.read_text())
    assert d["metrics"] == {"mrr": 0.5} and d["config"] == {"lr": 0.1} and d["seed"] == 3 and d["scale"] == "small"
    assert d["versions"]["torch"].startswith("2.") and d["machine"]["cpu_count"] >= 1 and d["git_commit"]
