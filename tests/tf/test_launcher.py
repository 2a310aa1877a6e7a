"""The launcher as a process against the real ZooKeeper: all present, one late, one never arrives, one
restarts; signals are forwarded and the command's exit status is returned."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.tfconfig import Member
from mesos_gpu.tf.launcher import EXIT_NOT_STARTED, EXIT_RENDEZVOUS_TIMEOUT, EXIT_USAGE

pytestmark = pytest.mark.zookeeper

PRINT_TF_CONFIG = 'printf "%s\\n" "$TF_CONFIG"'
W2 = "--role worker --index 0 --members worker:2"
PRINT_AND_SLEEP = 'printf "%s\\n" "$TF_CONFIG"; exec sleep 60'


def port_of(member: Member) -> int:
    return 31000 + 10 * tfc.ROLES.index(member.role) + member.index


def launcher_args(zk_url, member, members, *, shell, timeout=30.0, port=None, job="job-1"):
    return [
        "--zk",
        zk_url,
        "--job-id",
        job,
        "--role",
        member.role,
        "--index",
        str(member.index),
        "--members",
        members,
        "--host",
        "127.0.0.1",
        "--port",
        str(port or port_of(member)),
        "--timeout",
        f"{timeout:g}",
        "--shell",
        shell,
    ]


def finish(process, timeout=30):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def assert_tf_config(text, member, addresses):
    config = json.loads(text)
    assert config == {
        "cluster": tfc.cluster_spec(addresses),
        "task": {"type": member.role, "index": member.index},
        "environment": "cloud",
    }


def wait_for_node(client, path, timeout=15.0, data=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = client.exists(path)
        if stat is not None and (data is None or client.get(path)[0] == data):
            return stat
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def test_all_present_every_member_runs_its_command_with_tf_config(launcher_processes, zk_url):
    members = tfc.expected_members({"chief": 1, "worker": 2})
    counts = "chief:1,worker:2"
    processes = [
        launcher_processes(*launcher_args(zk_url, m, counts, shell=PRINT_TF_CONFIG)) for m in members
    ]
    addresses = {m: f"127.0.0.1:{port_of(m)}" for m in members}
    for member, process in zip(members, processes, strict=True):
        code, out, err = finish(process)
        assert code == 0, err
        assert_tf_config(out.strip(), member, addresses)
        assert f"{member} registered 127.0.0.1:{port_of(member)} in job job-1" in err
        assert "cluster complete" in err


def test_one_late_member_the_others_wait_for_it(launcher_processes, zk_url, zk_chroot, kazoo_client):
    members = tfc.expected_members({"ps": 1, "worker": 2})
    early = {
        m: launcher_processes(*launcher_args(zk_url, m, "ps:1,worker:2", shell=PRINT_TF_CONFIG))
        for m in members[:2]
    }
    observer = kazoo_client()
    for member in early:
        wait_for_node(observer, tfc.member_path("job-1", member, zk_chroot))
    time.sleep(1.0)
    assert all(p.poll() is None for p in early.values())  # still waiting at the barrier
    late = launcher_processes(*launcher_args(zk_url, members[2], "ps:1,worker:2", shell=PRINT_TF_CONFIG))
    addresses = {m: f"127.0.0.1:{port_of(m)}" for m in members}
    for member, process in [*early.items(), (members[2], late)]:
        code, out, err = finish(process)
        assert code == 0, err
        assert_tf_config(out.strip(), member, addresses)


def test_one_never_arrives_the_timeout_names_it(launcher_processes, zk_url, zk_chroot, kazoo_client):
    counts = "chief:1,ps:1,worker:2"
    chief = launcher_processes(*launcher_args(zk_url, Member("chief", 0), counts, shell=PRINT_TF_CONFIG))
    observer = kazoo_client()
    wait_for_node(observer, tfc.member_path("job-1", Member("chief", 0), zk_chroot))
    started = time.monotonic()
    args = launcher_args(zk_url, Member("worker", 0), counts, shell=PRINT_TF_CONFIG, timeout=2)
    worker = launcher_processes(*args)
    code, out, err = finish(worker)
    assert 2 <= time.monotonic() - started < 10
    assert code == EXIT_RENDEZVOUS_TIMEOUT
    assert out == ""  # the command never ran
    assert "rendezvous timed out after 2 s: missing ps-0, worker-1" in err
    assert observer.get_children(tfc.members_path("job-1", zk_chroot)) == ["chief-0"]  # worker-0 left
    assert chief.poll() is None
    chief.send_signal(signal.SIGTERM)
    assert finish(chief)[0] == 128 + signal.SIGTERM


def test_one_restarts_it_replaces_its_node_and_joins_the_running_cluster(
    launcher_processes, zk_url, zk_chroot, kazoo_client
):
    counts = "chief:1,worker:2"
    members = tfc.expected_members({"chief": 1, "worker": 2})
    processes = {
        m: launcher_processes(*launcher_args(zk_url, m, counts, shell=PRINT_AND_SLEEP)) for m in members
    }
    first = {m: f"127.0.0.1:{port_of(m)}" for m in members}
    for member, process in processes.items():
        assert_tf_config(process.stdout.readline().strip(), member, first)
    # worker-1's launcher dies abruptly (its child keeps running): its session, and node, outlive it.
    worker1 = Member("worker", 1)
    processes[worker1].send_signal(signal.SIGKILL)
    processes[worker1].wait(10)
    observer = kazoo_client()
    path = tfc.member_path("job-1", worker1, zk_chroot)
    assert observer.get(path)[0] == b"127.0.0.1:31031"
    restarted = launcher_processes(*launcher_args(zk_url, worker1, counts, shell=PRINT_AND_SLEEP, port=32001))
    second = {**first, worker1: "127.0.0.1:32001"}
    assert_tf_config(restarted.stdout.readline().strip(), worker1, second)
    assert observer.get(path)[0] == b"127.0.0.1:32001"
    deadline = time.monotonic() + 10  # the restarted member rewrites the cluster node (asynchronously)
    while tfc.parse_cluster_record(observer.get(tfc.cluster_path("job-1", zk_chroot))[0])[0] != second:
        assert time.monotonic() < deadline, "the cluster node was not updated"
        time.sleep(0.05)
    # SIGTERM reaches each command through its launcher: `sleep` dies of it, the launcher says 128+15.
    for process in [processes[Member("chief", 0)], processes[Member("worker", 0)], restarted]:
        process.send_signal(signal.SIGTERM)
        code, _, err = finish(process)
        assert code == 128 + signal.SIGTERM
    assert "replaced the node of its previous run" in err


def test_sigterm_is_forwarded_and_the_commands_exit_status_returned(launcher_processes):
    trap = "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done"
    process = launcher_processes("--role", "worker", "--index", "0", "--members", "worker:1", "--shell", trap)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)  # to the launcher only, not to its process group
    code, out, err = finish(process)
    assert (code, out) == (42, "got TERM\n"), err


def test_sigterm_during_the_rendezvous_stops_the_launcher_and_removes_its_node(
    launcher_processes, zk_url, zk_chroot, kazoo_client
):
    process = launcher_processes(*launcher_args(zk_url, Member("worker", 0), "worker:2", shell="echo never"))
    observer = kazoo_client()
    wait_for_node(observer, tfc.member_path("job-1", Member("worker", 0), zk_chroot))
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    assert code == 128 + signal.SIGTERM
    assert out == ""
    assert "stopped by signal 15 before the command started" in err
    assert observer.exists(tfc.member_path("job-1", Member("worker", 0), zk_chroot)) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--shell", "exit 7"], 7),
        (["--shell", "kill -KILL $$"], 128 + 9),
        (["--", "sh", "-c", 'test -z "$TF_CONFIG"'], 0),  # a single-task job gets no TF_CONFIG
        (["--", "/nonexistent/program"], EXIT_NOT_STARTED),
    ],
)
def test_single_task_exit_status_is_the_commands(launcher_processes, args, expected):
    process = launcher_processes("--role", "worker", "--index", "0", "--members", "worker:1", *args)
    code, _, err = finish(process)
    assert code == expected, err


def test_single_task_job_drops_an_inherited_tf_config(launcher_processes):
    env = {**os.environ, "TF_CONFIG": '{"cluster": {}}', "MESOS_GPU_TF_ROLE": "chief"}
    env.update({"MESOS_GPU_TF_INDEX": "0", "MESOS_GPU_TF_MEMBERS": "chief:1"})
    process = launcher_processes("--", "sh", "-c", 'echo "[$TF_CONFIG]"', env=env)
    code, out, err = finish(process)
    assert (code, out) == (0, "[]\n"), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--role worker --index 0 --members worker:1", "no command to run"),
        ("--role worker --index 0 --members worker:1 --shell x -- y", "not both"),
        ("--role worker --members worker:2 --shell x", "--index"),
        ("--role worker --index 2 --members worker:2 --shell x", "worker-2 is not a member"),
        ("--role master --index 0 --members worker:2 --shell x", "unknown TensorFlow role"),
        ("--role worker --index 0 --members worker:2 --shell x", "--zk"),
        (f"{W2} --zk zk://a/x --job-id j --port 1 --shell x", "ZooKeeper URL"),
        (f"{W2} --zk zk://a:1/x --job-id j --port 1 --timeout x --shell x", "timeout must be seconds"),
        (f"{W2} --zk zk://a:1/x --job-id a/b --port 1 --shell x", "job id"),
    ],
)
def test_usage_errors_say_what_is_missing(launcher_processes, args, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESOS_GPU_", "PORT"))}
    code, _, err = finish(launcher_processes(*args.split(), env=env))
    assert code == EXIT_USAGE
    assert message in err


def test_settings_come_from_the_environment_the_scheduler_sets(launcher_processes, zk_url):
    members = tfc.expected_members({"worker": 2})
    processes = []
    for member in members:
        env = tfc.launcher_environment(
            zk_url, "job-env", member, {"worker": 2}, host="127.0.0.1", port=port_of(member), timeout=30
        )
        processes.append(launcher_processes("--shell", PRINT_TF_CONFIG, env={**os.environ, **env}))
    addresses = {m: f"127.0.0.1:{port_of(m)}" for m in members}
    for member, process in zip(members, processes, strict=True):
        code, out, err = finish(process)
        assert code == 0, err
        assert_tf_config(out.strip(), member, addresses)


def test_zookeeper_unreachable_fails_fast(launcher_processes):
    from mesos_gpu.local.zookeeper import free_port
    from mesos_gpu.tf.launcher import EXIT_ZOOKEEPER

    url = f"zk://127.0.0.1:{free_port()}/x"
    args = launcher_args(url, Member("worker", 0), "worker:2", shell="true", timeout=2)
    process = launcher_processes(*args)
    code, _, err = finish(process)
    assert code == EXIT_ZOOKEEPER
    assert "cannot reach ZooKeeper" in err


def test_the_node_of_a_member_killed_without_leaving_expires_with_its_short_session(
    launcher_processes, zk_url, zk_chroot, kazoo_client
):
    from mesos_gpu.tf.launcher import SESSION_TIMEOUT_S

    process = launcher_processes(*launcher_args(zk_url, Member("worker", 0), "worker:2", shell="true"))
    observer = kazoo_client()
    path = tfc.member_path("job-1", Member("worker", 0), zk_chroot)
    wait_for_node(observer, path)
    process.send_signal(signal.SIGKILL)  # no leave(): only the session's expiry removes the node
    killed = time.monotonic()
    process.wait(10)
    gone = threading.Event()
    observer.exists(path, watch=lambda event: gone.set())
    assert gone.wait(SESSION_TIMEOUT_S + 6)
    assert observer.exists(path) is None
    assert time.monotonic() - killed < SESSION_TIMEOUT_S + 6
