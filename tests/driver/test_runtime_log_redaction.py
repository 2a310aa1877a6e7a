"""The runtime's log lines name an event or command by its kind and ids, never by its contents: job
records and TaskInfos carry env values, which may be secrets."""

from __future__ import annotations

from mesos_gpu.core.commands import ClearRendezvous, KillTask
from mesos_gpu.driver.control import DriverError, LeadershipLost, WatchdogFired
from mesos_gpu.driver.runtime import describe


class _Submitted:
    job_id = "job-1"
    record = {"spec": {"env": {"TOKEN": "s3cret"}}}


def test_a_command_is_named_by_its_kind_and_ids() -> None:
    assert describe(ClearRendezvous("job-1")) == "ClearRendezvous(job_id=job-1)"
    assert describe(KillTask("job-1.worker-0", "agent-7")) == \
        "KillTask(task_id=job-1.worker-0, agent_id=agent-7)"
    assert describe(KillTask("job-1.worker-0", None)) == "KillTask(task_id=job-1.worker-0)"


def test_contents_never_reach_the_text() -> None:
    text = describe(_Submitted())
    assert text == "_Submitted(job_id=job-1)"
    assert "s3cret" not in text


def test_control_messages_show_their_kind_only() -> None:
    assert describe(WatchdogFired("no heartbeat from the master", None)) == "WatchdogFired()"
    assert describe(DriverError("token s3cret refused", None)) == "DriverError()"
    assert describe(LeadershipLost("suspended")) == "LeadershipLost()"
