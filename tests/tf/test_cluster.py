"""TF_CONFIG against Kubeflow TFJob's format, member names, ZooKeeper paths and the launcher contract."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.tfconfig import ClusterError, Member


def addresses_for(counts: dict[str, int]) -> dict[Member, str]:
    return {m: f"{m.role}{m.index}.example:{2222 + i}" for i, m in enumerate(tfc.expected_members(counts))}


# What Kubeflow's training-operator writes (genTFConfigJSONStr: Go's json.Marshal, so compact, map keys
# sorted, struct fields in the order cluster, task, environment).
TFJOB_CASES = [
    pytest.param(
        {"chief": 1, "ps": 1, "worker": 2},
        Member("worker", 1),
        '{"cluster":{"chief":["chief0.example:2222"],"ps":["ps0.example:2223"],'
        '"worker":["worker0.example:2224","worker1.example:2225"]},'
        '"task":{"type":"worker","index":1},"environment":"cloud"}',
        id="chief-ps-workers",
    ),
    # TFJob v1's genClusterSpec skips the evaluator ("evaluator is not part of training cluster"), for
    # every task, the evaluator's own TF_CONFIG included (issue 19 item 5).
    pytest.param(
        {"worker": 2, "evaluator": 1, "chief": 1, "ps": 2},
        Member("evaluator", 0),
        '{"cluster":{"chief":["chief0.example:2222"],'
        '"ps":["ps0.example:2224","ps1.example:2225"],'
        '"worker":["worker0.example:2226","worker1.example:2227"]},'
        '"task":{"type":"evaluator","index":0},"environment":"cloud"}',
        id="evaluator-left-out-of-its-own-cluster",
    ),
    pytest.param(
        {"worker": 1, "evaluator": 1, "chief": 1, "ps": 1},
        Member("chief", 0),
        '{"cluster":{"chief":["chief0.example:2222"],"ps":["ps0.example:2224"],'
        '"worker":["worker0.example:2225"]},'
        '"task":{"type":"chief","index":0},"environment":"cloud"}',
        id="evaluator-left-out-of-the-chiefs-cluster",
    ),
    pytest.param(
        {"ps": 1, "worker": 1},
        Member("ps", 0),
        '{"cluster":{"ps":["ps0.example:2222"],"worker":["worker0.example:2223"]},'
        '"task":{"type":"ps","index":0},"environment":"cloud"}',
        id="no-chief",
    ),
    pytest.param(
        {"chief": 1, "ps": 0, "worker": 1},
        Member("chief", 0),
        '{"cluster":{"chief":["chief0.example:2222"],"worker":["worker0.example:2223"]},'
        '"task":{"type":"chief","index":0},"environment":"cloud"}',
        id="empty-role-omitted",
    ),
]


@pytest.mark.parametrize(("counts", "member", "expected"), TFJOB_CASES)
def test_tf_config_is_byte_for_byte_what_tfjob_writes(counts, member, expected):
    assert tfc.tf_config_json(addresses_for(counts), member) == expected


@pytest.mark.parametrize("counts", [{"worker": 1}, {"chief": 1}, {"chief": 1, "ps": 0}])
def test_a_single_task_job_gets_no_tf_config(counts):
    addresses = addresses_for(counts)
    (member,) = addresses
    assert not tfc.is_distributed(counts)
    assert tfc.tf_config(addresses, member) is None
    assert tfc.tf_config_json(addresses, member) is None


def test_hosts_are_ordered_by_numeric_index_not_by_insertion_or_text():
    workers = [Member("worker", i) for i in (11, 2, 0, 10, 1, 3, 9, 4, 8, 5, 7, 6)]
    spec = tfc.cluster_spec({m: f"h{m.index}:1" for m in workers})
    assert spec == {"worker": [f"h{i}:1" for i in range(12)]}


def test_a_gap_in_a_roles_indices_is_an_error():
    with pytest.raises(ClusterError, match="worker indices are not contiguous: missing 1"):
        tfc.cluster_spec({Member("worker", 0): "a:1", Member("worker", 2): "c:1"})


@pytest.mark.parametrize("address", ["nohost", ":80", "h:", "h:0", "h:65536", "h:x"])
def test_an_address_must_be_host_colon_port(address):
    with pytest.raises(ClusterError, match="must be host:port"):
        tfc.cluster_spec({Member("worker", 0): address, Member("worker", 1): "b:1"})


def test_ipv6_addresses_in_brackets_are_kept_verbatim():
    spec = tfc.cluster_spec({Member("worker", 0): "[::1]:2222", Member("worker", 1): "[::1]:2223"})
    assert spec == {"worker": ["[::1]:2222", "[::1]:2223"]}


def test_tf_config_for_a_stranger_is_an_error():
    with pytest.raises(ClusterError, match="ps-0 is not a member"):
        tfc.tf_config(addresses_for({"worker": 2}), Member("ps", 0))


role_counts = st.fixed_dictionaries(
    {}, optional={role: st.integers(min_value=0, max_value=12) for role in tfc.ROLES}
).filter(lambda c: sum(c.values()) >= 2)


@given(counts=role_counts, data=st.data())
def test_tf_config_properties(counts, data):
    members = tfc.expected_members(counts)
    addresses = {m: f"10.0.{m.index}.{tfc.ROLES.index(m.role)}:{31000 + m.index}" for m in members}
    member = data.draw(st.sampled_from(sorted(addresses)))
    config = json.loads(tfc.tf_config_json(addresses, member))
    assert list(config) == ["cluster", "task", "environment"]
    assert config["task"] == {"type": member.role, "index": member.index}
    assert config["environment"] == "cloud"
    cluster = config["cluster"]
    # TFJob's key order, no empty roles, no evaluator (not part of the training cluster)
    assert list(cluster) == [r for r in tfc.ROLES if counts.get(r) and r != "evaluator"]
    for role, hosts in cluster.items():
        assert hosts == [addresses[Member(role, i)] for i in range(counts[role])]


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("worker-1", Member("worker", 1)),
        ("ps-10", Member("ps", 10)),
        ("chief-0", Member("chief", 0)),
        ("evaluator-0", Member("evaluator", 0)),
    ],
)
def test_member_names_parse(name, member):
    assert tfc.parse_member_name(name) == member
    assert member.name == name == str(member)


@pytest.mark.parametrize(
    "name",
    ["worker", "worker-", "-1", "worker-01", "worker--1", "gpu-0", "worker-1a", "worker-\u0661", "Worker-0"],
)
def test_bad_member_names_are_rejected(name):
    with pytest.raises(ClusterError):
        tfc.parse_member_name(name)


@given(role=st.sampled_from(tfc.ROLES), index=st.integers(min_value=0, max_value=10**6))
def test_member_name_round_trip(role, index):
    assert tfc.parse_member_name(Member(role, index).name) == Member(role, index)


@pytest.mark.parametrize(
    ("role", "index"), [("master", 0), ("worker", -1), ("worker", True), ("worker", "1")]
)
def test_bad_members_are_rejected(role, index):
    with pytest.raises(ClusterError):
        Member(role, index)


@pytest.mark.parametrize(
    ("chroot", "expected"),
    [
        ("", "/tf/job-1/members/worker-1"),
        ("/", "/tf/job-1/members/worker-1"),
        ("/mesos-gpu/fw", "/mesos-gpu/fw/tf/job-1/members/worker-1"),
        ("mesos-gpu/fw/", "/mesos-gpu/fw/tf/job-1/members/worker-1"),
    ],
)
def test_zookeeper_paths_follow_the_design(chroot, expected):
    assert tfc.member_path("job-1", Member("worker", 1), chroot) == expected
    assert tfc.members_path("job-1", chroot) == expected.rsplit("/", 1)[0]
    assert tfc.cluster_path("job-1", chroot) == expected.rsplit("/", 2)[0] + "/cluster"
    assert tfc.job_path("job-1", chroot) == expected.rsplit("/", 2)[0]


@pytest.mark.parametrize("job_id", ["", "a/b", ".", "..", " j"])
def test_bad_job_ids_are_rejected(job_id):
    with pytest.raises(ClusterError, match="job id"):
        tfc.job_path(job_id)


@pytest.mark.parametrize(
    ("url", "hosts", "chroot"),
    [
        ("zk://127.0.0.1:2181/mesos-gpu/fw", "127.0.0.1:2181", "/mesos-gpu/fw"),
        ("zk://a:1,b:2,c:3/x", "a:1,b:2,c:3", "/x"),
        ("zk://a:1", "a:1", ""),
        ("zk://a:1/", "a:1", ""),
        ("a:1/x/", "a:1", "/x"),
        ("zoo://a:1/x", "a:1", "/x"),
    ],
)
def test_zookeeper_urls_parse(url, hosts, chroot):
    assert tfc.parse_zk_url(url) == (hosts, chroot)


@pytest.mark.parametrize("url", ["", "zk://", "zk:///x", "zk://a/x", "zk://a:1,b/x", "zk://a:1/x//y"])
def test_bad_zookeeper_urls_are_rejected(url):
    with pytest.raises(ClusterError):
        tfc.parse_zk_url(url)


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("chief:1,ps:1,worker:2", {"chief": 1, "ps": 1, "worker": 2}),
        (" worker:3 , evaluator:1 ,", {"worker": 3, "evaluator": 1}),
        ("worker:1,ps:0", {"worker": 1, "ps": 0}),
    ],
)
def test_role_counts_parse(text, counts):
    assert tfc.parse_role_counts(text) == counts


@pytest.mark.parametrize(
    "text", ["", "worker", "worker:x", "master:1", "worker:1,worker:2", "ps:0", "worker:-1"]
)
def test_bad_role_counts_are_rejected(text):
    with pytest.raises(ClusterError):
        tfc.parse_role_counts(text)


@given(counts=role_counts)
def test_role_counts_round_trip(counts):
    assert tfc.parse_role_counts(tfc.format_role_counts(counts)) == {r: n for r, n in counts.items() if n}


def test_timeout_message_names_the_missing_members():
    message = tfc.timeout_message(60.0, [Member("worker", 1), Member("ps", 0)])
    assert message == "rendezvous timed out after 60 s: missing worker-1, ps-0"
    assert tfc.missing_members(tfc.expected_members({"ps": 1, "worker": 2}), [Member("worker", 0)]) == [
        Member("ps", 0),
        Member("worker", 1),
    ]


def test_cluster_record_round_trip_and_rejects_garbage():
    addresses = addresses_for({"chief": 1, "worker": 2})
    versions = {m: 100 + i for i, m in enumerate(addresses)}
    data = tfc.cluster_record(addresses, versions)
    assert json.loads(data)["cluster"] == tfc.cluster_spec(addresses)
    assert tfc.parse_cluster_record(data) == (addresses, versions)
    garbage_records = [b"", b"[1]", b"null", b"{}", b"\xff"]
    garbage_records += [b'{"members": {"worker-0": {}}}', b'{"members": {"x": 1}}']
    for garbage in garbage_records:
        with pytest.raises(ClusterError):
            tfc.parse_cluster_record(garbage)


def test_launcher_environment_and_command():
    env = tfc.launcher_environment(
        "zk://127.0.0.1:2181/mesos-gpu/fw",
        "job-1",
        Member("worker", 1),
        {"chief": 1, "worker": 2},
        host="agent-3",
        port=31005,
        timeout=60,
    )
    assert env == {
        "MESOS_GPU_ZK": "zk://127.0.0.1:2181/mesos-gpu/fw",
        "MESOS_GPU_JOB_ID": "job-1",
        "MESOS_GPU_TF_ROLE": "worker",
        "MESOS_GPU_TF_INDEX": "1",
        "MESOS_GPU_TF_MEMBERS": "chief:1,worker:2",
        "MESOS_GPU_TF_HOST": "agent-3",
        "MESOS_GPU_TF_PORT": "31005",
        "MESOS_GPU_TF_RENDEZVOUS_TIMEOUT": "60",
    }
    with pytest.raises(ClusterError, match="worker-2 is not a member"):
        tfc.launcher_environment("zk://a:1/x", "j", Member("worker", 2), {"worker": 2}, host="h", port=1)
    command = tfc.launcher_command("python train.py --epochs 'a b'")
    words = shlex.split(command)
    assert words[:2] == ["exec", "python3"]
    assert words[2] == "${MESOS_SANDBOX:-.}/launcher.pyz"
    assert words[3:] == ["--shell", "python train.py --epochs 'a b'"]
