"""The settings records the tenants are kept in (`read_setting`, `write_setting`, `delete_setting` of both
stores): versions, copies, bad names, and fencing: a deposed leader's write is refused and stores nothing."""

from __future__ import annotations

import pytest

from mesos_gpu.store.base import InvalidRecord, NotLeader
from tests.store.conftest import StoreBackend, backend  # noqa: F401 - `backend`: memory and ZooKeeper
from tests.store.test_fencing import leading_and_standby
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def test_a_setting_is_versioned_shared_and_deleted(backend: StoreBackend) -> None:  # noqa: F811
    one, two = backend.open(), backend.open()
    assert one.read_setting("tenants") is None
    assert one.write_setting("tenants", {"tenants": {"a": {"quota": 1}}}).version == 0
    record = two.read_setting("tenants")
    assert record is not None and record.version == 0 and record.data == {"tenants": {"a": {"quota": 1}}}
    record.data["tenants"] = {}                     # a copy: the stored record is unchanged
    assert two.write_setting("tenants", {"tenants": {}}).version == 1
    assert one.read_setting("tenants").data == {"tenants": {}}
    assert one.delete_setting("tenants") is True
    assert two.read_setting("tenants") is None and two.delete_setting("tenants") is False
    with pytest.raises(InvalidRecord):
        one.write_setting("a/b", {})


def test_a_deposed_leaders_setting_write_is_refused(backend: StoreBackend) -> None:  # noqa: F811
    leader, election, standby = leading_and_standby(backend)
    leader.write_setting("tenants", {"v": 1})
    backend.expire_session(leader)
    wait_until(lambda: election.leader_identifier() == "b:2", 10, "the standby to lead")
    with pytest.raises(NotLeader):
        leader.write_setting("tenants", {"v": 2})
    with pytest.raises(NotLeader):
        leader.delete_setting("tenants")
    assert standby.read_setting("tenants").data == {"v": 1}
