"""Component names without the LLM (folder, title words) and near-duplicate names joined."""

from __future__ import annotations

from sopr_rag.cards.glossary_rules import folder_names, merge_names, rule_names, title_words
from sopr_rag.ingest import parse_document


def proc(doc_id: str, title: str):
    return parse_document(doc_id, f"# {title}\n\nSomething is wrong.\n\n## Steps\n1. Fix it.\n")


def test_folder_names_drop_cluster_and_operator_noise():
    assert folder_names("content/runbooks/alertmanager/AlertmanagerFailedReload.md") == ["alertmanager"]
    assert folder_names("alerts/cluster-etcd-operator/etcdNoLeader.md") == ["cluster etcd operator", "etcd operator",
                                                                           "etcd"]
    assert folder_names("content/runbooks/prometheus-operator/X.md") == ["prometheus operator"]  # the operator itself
    assert folder_names("alerts/openshift-container-storage-operator/helpers/X.md") == [
        "openshift container storage operator"]  # a generic folder names nothing: its parent does
    assert folder_names("alerts/X.md") == folder_names("X.md") == []


def test_title_words_stop_at_the_problem():
    assert title_words("KubeDaemonSetRolloutStuck") == ["kube", "daemon", "set", "rollout"]
    assert title_words("etcdHighFsyncDurations") == ["etcd"]
    assert title_words("UPS on battery - generator failed") == ["ups"]


def test_rule_names_folder_then_shared_title_prefix_then_folder():
    procs = [proc("alerts/cluster-etcd-operator/etcdNoLeader.md", "etcdNoLeader"),
             proc("runbooks/kubernetes/KubeDaemonSetRolloutStuck.md", "KubeDaemonSetRolloutStuck"),
             proc("runbooks/kubernetes/KubeDaemonSetMisScheduled.md", "KubeDaemonSetMisScheduled"),
             proc("runbooks/kubernetes/KubeContainerWaiting.md", "KubeContainerWaiting"),
             proc("runbooks/kubernetes/KubeAPIDown.md", "KubeAPIDown"),
             proc("runbooks/prometheus-operator/PrometheusOperatorSyncFailed.md", "PrometheusOperatorSyncFailed"),
             proc("alerts/Watchdog.md", "Watchdog")]
    assert rule_names(procs) == {
        "alerts/cluster-etcd-operator/etcdNoLeader.md": "etcd",  # the title starts with the folder's core name
        "runbooks/kubernetes/KubeDaemonSetRolloutStuck.md": "kube daemon set",  # shared with a sibling title
        "runbooks/kubernetes/KubeDaemonSetMisScheduled.md": "kube daemon set",
        "runbooks/kubernetes/KubeContainerWaiting.md": "kubernetes",  # "Kube" is the whole folder's prefix
        "runbooks/kubernetes/KubeAPIDown.md": "kubernetes",
        "runbooks/prometheus-operator/PrometheusOperatorSyncFailed.md": "prometheus operator",
    }  # Watchdog: no folder, no sibling: unnamed


def test_near_duplicates_merge_and_spellings_become_aliases():
    names = {"a.md": "Kubelet", "b.md": "kubelet", "c.md": "kubelet", "d.md": "kube-apiserver", "e.md": "API server",
             "f.md": "Kubernetes API server", "g.md": "etcd", "h.md": "etcd cluster", "i.md": "node exporter",
             "j.md": "node"}
    groups = {g.key: g for g in merge_names(names)}
    assert sorted(groups) == ["api server", "etcd", "kubelet", "node", "node export"]
    assert groups["kubelet"].name == "kubelet" and groups["kubelet"].docs == ["a.md", "b.md", "c.md"]
    assert groups["api server"].docs == ["d.md", "e.md", "f.md"]
    assert groups["api server"].variants == ["kube-apiserver", "kubernetes api server"]
    assert groups["etcd"].variants == ["etcd cluster"]
