"""Suppression across (re)subscription on the local master (issue 20 item 1): as Mesos'
`Master::subscribe` / `updateFramework`, every SUBSCRIBE sets the framework's suppressed roles to its
`suppressed_roles` (none listed: none suppressed), so a failed-over framework gets offers again unless
it asks otherwise; SUPPRESS / REVIVE name roles; /master/state and GET_FRAMEWORKS agree on `active`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mesos_gpu.local import protobuf
from tests.local.conftest import CallClient, RawStream, get_json, subscribe_body
from tests.local.test_conformance_wire import Session
from tests.local.test_master_endpoints import operator_call
from tests.local.test_protobuf import ProtobufStream
from tests.local.test_protobuf import _post as post_protobuf
from tests.waiting import wait_until

QUIET = 0.6  # seconds without OFFERS that show suppression (the allocation interval is 0.1 s)


@pytest.fixture
def sessions(cluster: Any) -> Iterator[Callable[..., Session]]:
    opened: list[Session] = []

    def open_session(body: dict[str, Any] | None = None) -> Session:
        session = Session(cluster.master_address, body)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()


def resubscribe(framework_id: str, suppressed_roles: list[str] | None = None, **info: Any) -> dict[str, Any]:
    """A failover SUBSCRIBE as pymesos sends it (same framework id), optionally with suppressed_roles."""
    body = subscribe_body(framework_id, failover_timeout=60, **info)
    if suppressed_roles is not None:
        body["subscribe"]["suppressed_roles"] = suppressed_roles
    return body


def suppressed_session(sessions: Callable[..., Session]) -> Session:
    """A subscribed framework that got offers, declined them and then SUPPRESSed (no offers follow)."""
    session = sessions(subscribe_body(failover_timeout=60))
    offers = session.offers()
    assert session.call("SUPPRESS")[0] == 202
    decline = {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}}
    assert session.call("DECLINE", decline)[0] == 202
    assert session.no_event("OFFERS", QUIET)
    return session


def active(address: str, framework_id: str) -> tuple[bool, bool]:
    """The framework's `active` in /master/state and in the operator API's GET_FRAMEWORKS."""
    _, state, _ = get_json(address, "/master/state")
    [in_state] = [f["active"] for f in state["frameworks"] if f["id"] == framework_id]
    _, answer, _ = operator_call(address, {"type": "GET_FRAMEWORKS"})
    frameworks = answer["get_frameworks"]["frameworks"]
    [in_operator] = [f["active"] for f in frameworks if f["framework_info"]["id"]["value"] == framework_id]
    return in_state, in_operator


def test_a_failover_subscribe_without_suppressed_roles_gets_offers_again(cluster, sessions):
    old = suppressed_session(sessions)
    assert active(cluster.master_address, old.framework_id) == (False, False)
    new = sessions(resubscribe(old.framework_id))
    assert new.framework_id == old.framework_id
    assert len(new.offers(timeout=3)) == 2  # both agents, without a REVIVE
    assert active(cluster.master_address, new.framework_id) == (True, True)


def test_a_failover_subscribe_with_its_role_suppressed_gets_no_offers_until_revive(cluster, sessions):
    old = sessions(subscribe_body(failover_timeout=60))
    assert old.offers()
    new = sessions(resubscribe(old.framework_id, suppressed_roles=["*"]))
    assert new.no_event("OFFERS", QUIET)
    assert active(cluster.master_address, new.framework_id) == (False, False)
    assert new.call("REVIVE")[0] == 202
    assert len(new.offers(timeout=3)) == 2
    assert active(cluster.master_address, new.framework_id) == (True, True)


def test_a_disconnected_framework_loses_its_decline_filters_as_in_mesos(cluster, sessions):
    # HierarchicalAllocatorProcess::deactivateFramework clears the framework's offer filters.
    old = sessions(subscribe_body(failover_timeout=60))
    offers = old.offers()
    old.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 3600}})
    old.stream.close()
    wait_until(lambda: not active(cluster.master_address, old.framework_id)[0], 5, "the disconnection")
    new = sessions(resubscribe(old.framework_id))
    assert len(new.offers(timeout=3)) == 2


def test_a_first_subscribe_may_start_suppressed(sessions):
    body = subscribe_body()
    body["subscribe"]["suppressed_roles"] = ["*"]
    session = sessions(body)
    assert session.no_event("OFFERS", QUIET)
    session.call("REVIVE")
    assert session.offers(timeout=3)


def test_suppressed_roles_outside_the_framework_roles_are_refused(cluster, raw_subscribe):
    body = subscribe_body(roles=["gpu"], capabilities=[{"type": "MULTI_ROLE"}])
    body["subscribe"]["suppressed_roles"] = ["gpu", "other", "another"]
    stream: RawStream = raw_subscribe(cluster.master_address, body)
    assert stream.status == 200
    error = stream.next_event()
    assert error == {
        "type": "ERROR",
        "error": {"message": "Suppressed roles { another, other } are not contained in the set of roles"},
    }
    assert stream.closed_by_server()


def test_suppress_and_revive_of_a_role_the_framework_lacks_are_dropped(sessions):
    session = sessions()
    offers = session.offers()
    assert session.call("SUPPRESS", {"roles": ["other"]})[0] == 202  # dropped: not the framework's role
    decline = {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}}
    session.call("DECLINE", decline)
    offers = session.offers(timeout=3)
    assert session.call("SUPPRESS", {"roles": ["*"]})[0] == 202
    session.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}})
    assert session.no_event("OFFERS", QUIET)
    assert session.call("REVIVE", {"roles": ["other"]})[0] == 202  # dropped as well
    assert session.no_event("OFFERS", QUIET)
    session.call("REVIVE", {"roles": ["*"]})
    assert session.offers(timeout=3)


def test_update_framework_sets_suppression_from_its_suppressed_roles(cluster, sessions):
    session = sessions()
    offers = session.offers()
    framework_info = subscribe_body(session.framework_id)["subscribe"]["framework_info"]
    update = {"framework_info": framework_info, "suppressed_roles": ["*"]}
    assert session.call("UPDATE_FRAMEWORK", update)[0] == 200
    session.call("DECLINE", {"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}})
    assert session.no_event("OFFERS", QUIET)
    assert active(cluster.master_address, session.framework_id) == (False, False)
    assert session.call("UPDATE_FRAMEWORK", {"framework_info": framework_info})[0] == 200
    assert session.offers(timeout=3)
    bad = {"framework_info": framework_info, "suppressed_roles": ["other"]}
    status, text = session.call("UPDATE_FRAMEWORK", bad)
    assert (status, text) == (400, "Suppressed roles { other } are not contained in the set of roles")


def test_suppressed_roles_is_field_2_of_call_subscribe_in_protobuf(cluster):
    body = subscribe_body()
    body["subscribe"]["suppressed_roles"] = ["*"]
    encoded = protobuf.encode("Call.Subscribe", body["subscribe"])
    assert encoded.endswith(b"\x12\x01*")  # scheduler.proto: repeated string suppressed_roles = 2
    stream = ProtobufStream(cluster.master_address, body)
    client = CallClient(cluster.master_address, stream.headers["mesos-stream-id"])
    try:
        framework_id = stream.next_of("SUBSCRIBED")["subscribed"]["framework_id"]
        with pytest.raises(TimeoutError):
            stream.next_of("OFFERS", timeout=QUIET)
        assert post_protobuf(client, {"framework_id": framework_id, "type": "REVIVE"}) == (202, "")
        assert stream.next_of("OFFERS", timeout=3)["offers"]["offers"]
    finally:
        client.close()
        stream.close()
