"""Strict protobuf-JSON checks of the nested v1 messages (NetworkInfo, ReservationInfo, HealthCheck, ...)
that scheduler and executor events carry: valid shapes parse, malformed ones fail with stout's wording."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mesos_gpu.local import protojson, prototables

SCALARS = prototables.SCALARS


def _ids(text: str) -> dict[str, str]:
    return {"value": text}


def status(**extra: Any) -> dict[str, Any]:
    base = {"task_id": _ids("t-1"), "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR"}
    base.update(extra)
    return base


def update(**extra: Any) -> dict[str, Any]:
    return {"type": "UPDATE", "update": {"status": status(**extra)}}


def resource(**extra: Any) -> dict[str, Any]:
    base = {"name": "disk", "type": "SCALAR", "scalar": {"value": 10.0}}
    base.update(extra)
    return base


def offer(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base = {
        "id": _ids("m-O1"),
        "framework_id": _ids("m-0000"),
        "agent_id": _ids("m-S0"),
        "hostname": "h",
        "resources": list(resources),
    }
    base.update(extra)
    return {"type": "OFFERS", "offers": {"offers": [base]}}


def task(**extra: Any) -> dict[str, Any]:
    base = {
        "name": "t",
        "task_id": _ids("t-1"),
        "agent_id": _ids("m-S0"),
        "command": {"value": "true"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}],
    }
    base.update(extra)
    return base


def launch(**extra: Any) -> dict[str, Any]:
    return {"type": "LAUNCH", "launch": {"task": task(**extra)}}


NETWORK_INFO = {
    "ip_addresses": [{"ip_address": "10.0.0.1"}, {"protocol": "IPv6"}],
    "name": "net",
    "groups": ["a", "b"],
    "labels": {"labels": [{"key": "k", "value": "v"}]},
    "port_mappings": [{"host_port": 31000, "container_port": 80, "protocol": "tcp"}],
}
HTTP_HEALTH = {
    "type": "HTTP",
    "http": {"protocol": "IPv4", "scheme": "http", "port": 8080, "path": "/health", "statuses": [200]},
    "delay_seconds": 1.0,
    "interval_seconds": 2.0,
    "timeout_seconds": 3.0,
    "consecutive_failures": 3,
    "grace_period_seconds": 5.0,
}
CONTAINER = {
    "type": "MESOS",
    "mesos": {"image": {"type": "APPC", "appc": {"name": "img", "id": "sha512-x", "labels": {"labels": []}}}},
    "network_infos": [NETWORK_INFO],
    "linux_info": {
        "capability_info": {"capabilities": ["NET_ADMIN"]},
        "bounding_capabilities": {"capabilities": ["CHOWN", "SYS_ADMIN"]},
        "effective_capabilities": {"capabilities": []},
        "share_pid_namespace": False,
        "seccomp": {"profile_name": "default.json", "unconfined": False},
        "ipc_mode": "PRIVATE",
        "shm_size": 64,
        "share_cgroups": True,
    },
    "rlimit_info": {"rlimits": [{"type": "RLMT_NOFILE", "hard": 1024, "soft": 1024}, {"type": "RLMT_CORE"}]},
    "tty_info": {"window_size": {"rows": 24, "columns": 80}},
    "volumes": [
        {
            "mode": "RW",
            "container_path": "/a",
            "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "p"}},
        },
        {
            "mode": "RO",
            "container_path": "/b",
            "source": {
                "type": "DOCKER_VOLUME",
                "docker_volume": {
                    "driver": "rexray",
                    "name": "vol",
                    "driver_options": {"parameter": [{"key": "size", "value": "1"}]},
                },
            },
        },
        {
            "mode": "RO",
            "container_path": "/c",
            "source": {
                "type": "HOST_PATH",
                "host_path": {"path": "/h", "mount_propagation": {"mode": "BIDIRECTIONAL"}},
            },
        },
        {
            "mode": "RO",
            "container_path": "/d",
            "source": {
                "type": "SECRET",
                "secret": {"type": "REFERENCE", "reference": {"name": "s", "key": "k"}},
            },
        },
        {
            "mode": "RW",
            "container_path": "/e",
            "source": {
                "type": "CSI_VOLUME",
                "csi_volume": {
                    "plugin_name": "nfs",
                    "static_provisioning": {
                        "volume_id": "v1",
                        "volume_capability": {
                            "mount": {"fs_type": "ext4", "mount_flags": ["noatime"]},
                            "access_mode": {"mode": "SINGLE_NODE_WRITER"},
                        },
                        "node_stage_secrets": {"user": {"type": "VALUE", "value": {"data": "dXNlcg=="}}},
                        "volume_context": {"server": "10.0.0.2"},
                    },
                },
            },
        },
    ],
}
DISCOVERY = {
    "visibility": "CLUSTER",
    "name": "svc",
    "environment": "PROD",
    "location": "EU",
    "version": "v1",
    "ports": {"ports": [{"number": 80, "name": "http", "protocol": "tcp", "visibility": "EXTERNAL"}]},
    "labels": {"labels": [{"key": "k"}]},
}

VALID: list[tuple[str, str, dict[str, Any]]] = [
    (
        "status_network_infos",
        "scheduler.Event",
        update(
            container_status={
                "container_id": {"value": "c", "parent": {"value": "p"}},
                "network_infos": [{"ip_addresses": [{"ip_address": "10.0.0.1"}]}],
                "cgroup_info": {"net_cls": {"classid": 65537}},
                "executor_pid": 42,
            }
        ),
    ),
    (
        "status_full_network_info",
        "scheduler.Event",
        update(container_status={"network_infos": [NETWORK_INFO]}),
    ),
    (
        "status_check_and_limitation",
        "scheduler.Event",
        update(
            state="TASK_FAILED",
            reason="REASON_CONTAINER_LIMITATION_MEMORY",
            check_status={"type": "HTTP", "http": {"status_code": 200}},
            limitation={"resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]},
        ),
    ),
    (
        "status_check_command",
        "scheduler.Event",
        update(check_status={"type": "COMMAND", "command": {"exit_code": 1}}),
    ),
    ("status_check_tcp", "scheduler.Event", update(check_status={"type": "TCP", "tcp": {"succeeded": True}})),
    ("status_reason_agent_draining", "scheduler.Event", update(reason="REASON_AGENT_DRAINING")),
    (
        "offer_refined_reservations",
        "scheduler.Event",
        offer(
            resource(
                reservations=[
                    {"type": "STATIC", "role": "r"},
                    {
                        "type": "DYNAMIC",
                        "role": "r/x",
                        "principal": "p",
                        "labels": {"labels": [{"key": "a"}]},
                    },
                ]
            )
        ),
    ),
    (
        "offer_dynamic_reservation",
        "scheduler.Event",
        offer(resource(reservations=[{"type": "DYNAMIC", "role": "r", "principal": "p"}])),
    ),
    (
        "offer_legacy_reservation",
        "scheduler.Event",
        offer(resource(role="r", reservation={"principal": "p"})),
    ),
    (
        "offer_persistent_volume",
        "scheduler.Event",
        offer(
            resource(
                role="r",
                disk={
                    "persistence": {"id": "vol-1", "principal": "p"},
                    "volume": {"mode": "RW", "container_path": "data"},
                    "source": {
                        "type": "MOUNT",
                        "mount": {"root": "/mnt/a"},
                        "vendor": "v",
                        "id": "i",
                        "profile": "fast",
                    },
                },
                shared={},
            ),
            resource(name="cpus", revocable={}),
            resource(disk={"source": {"type": "PATH", "path": {"root": "/p"}, "metadata": {"labels": []}}}),
        ),
    ),
    (
        "offer_domain_unavailability_url_query",
        "scheduler.Event",
        offer(
            domain={"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "a"}}},
            unavailability={"start": {"nanoseconds": 1}, "duration": {"nanoseconds": 2}},
            url={"scheme": "http", "address": {"port": 5051}, "query": [{"key": "a", "value": "b"}]},
        ),
    ),
    (
        "inverse_offers",
        "scheduler.Event",
        {
            "type": "INVERSE_OFFERS",
            "inverse_offers": {
                "inverse_offers": [
                    {
                        "id": _ids("m-O9"),
                        "framework_id": _ids("m-0000"),
                        "agent_id": _ids("m-S0"),
                        "unavailability": {"start": {"nanoseconds": 10}},
                        "resources": [resource()],
                    }
                ]
            },
        },
    ),
    (
        "rescind_inverse_offer",
        "scheduler.Event",
        {"type": "RESCIND_INVERSE_OFFER", "rescind_inverse_offer": {"inverse_offer_id": _ids("x")}},
    ),
    (
        "update_operation_status",
        "scheduler.Event",
        {
            "type": "UPDATE_OPERATION_STATUS",
            "update_operation_status": {
                "status": {
                    "operation_id": _ids("op"),
                    "state": "OPERATION_FINISHED",
                    "converted_resources": [resource()],
                    "uuid": {"value": "AAAAAAAAAAAAAAAAAAAAAA=="},
                    "agent_id": _ids("m-S0"),
                    "resource_provider_id": _ids("rp"),
                }
            },
        },
    ),
    (
        "subscribed_master_domain",
        "scheduler.Event",
        {
            "type": "SUBSCRIBED",
            "subscribed": {
                "framework_id": _ids("m-0000"),
                "master_info": {
                    "id": "m",
                    "ip": 16777343,
                    "port": 5050,
                    "domain": {"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "a"}}},
                    "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "QUOTA_V2"}],
                },
            },
        },
    ),
    ("launch_http_health_check", "executor.Event", launch(health_check=HTTP_HEALTH)),
    (
        "launch_tcp_and_command_health_checks",
        "executor.Event",
        launch(
            health_check={"type": "TCP", "tcp": {"port": 22, "protocol": "IPv6"}},
            check={"type": "COMMAND", "command": {"command": {"value": "true"}}, "delay_seconds": 0.5},
        ),
    ),
    (
        "launch_http_check",
        "executor.Event",
        launch(check={"type": "HTTP", "http": {"port": 80, "path": "/"}}),
    ),
    ("launch_tcp_check", "executor.Event", launch(check={"type": "TCP", "tcp": {"port": 80}})),
    ("launch_discovery", "executor.Event", launch(discovery=DISCOVERY)),
    (
        "launch_limits",
        "executor.Event",
        launch(limits={"cpus": {"value": 2.5}, "mem": {"value": "Infinity"}}),
    ),
    ("launch_container", "executor.Event", launch(container=CONTAINER)),
    (
        "launch_docker_image_secrets",
        "executor.Event",
        launch(
            container={
                "type": "MESOS",
                "mesos": {
                    "image": {
                        "type": "DOCKER",
                        "docker": {
                            "name": "busybox",
                            "credential": {"principal": "u", "secret": "pw"},
                            "config": {"type": "VALUE", "value": {"data": "e30="}},
                        },
                    }
                },
            },
            command={
                "value": "true",
                "environment": {
                    "variables": [
                        {"name": "A", "type": "VALUE", "value": "1"},
                        {
                            "name": "B",
                            "type": "SECRET",
                            "secret": {"type": "REFERENCE", "reference": {"name": "s"}},
                        },
                    ]
                },
            },
        ),
    ),
    (
        "subscribed_executor_discovery_and_agent_domain",
        "executor.Event",
        {
            "type": "SUBSCRIBED",
            "subscribed": {
                "executor_info": {"executor_id": _ids("e"), "discovery": DISCOVERY, "container": CONTAINER},
                "framework_info": {
                    "user": "u",
                    "name": "f",
                    "offer_filters": {
                        "gpu": {
                            "min_allocatable_resources": {
                                "quantities": [{"quantities": {"cpus": {"value": 1}, "gpus": {"value": 1}}}]
                            }
                        }
                    },
                },
                "agent_info": {
                    "hostname": "h",
                    "port": 5051,
                    "domain": {"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "a"}}},
                },
            },
        },
    ),
    (
        "launch_group_nested",
        "executor.Event",
        {
            "type": "LAUNCH_GROUP",
            "launch_group": {"task_group": {"tasks": [task(health_check=HTTP_HEALTH, discovery=DISCOVERY)]}},
        },
    ),
]


@pytest.mark.parametrize("obj,message", [(obj, msg) for _, msg, obj in VALID], ids=[c[0] for c in VALID])
def test_valid_nested_messages_parse_strictly(obj: dict[str, Any], message: str) -> None:
    assert protojson.strict_errors(obj, message) == []
    assert protojson.convert(obj, message, strict=True) == protojson.convert(obj, message)


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the dotted `path` (list indexes as numbers) set to `value`."""
    obj = copy.deepcopy(base)
    node: Any = obj
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return obj


UPDATE_NET = update(container_status={"network_infos": [NETWORK_INFO]})
NET = "update.status.container_status.network_infos.0"
OFFER_RES = offer(resource(reservations=[{"type": "DYNAMIC", "role": "r", "principal": "p"}]))
RES = "offers.offers.0.resources.0"
LAUNCH_FULL = launch(
    health_check=HTTP_HEALTH, discovery=DISCOVERY, container=CONTAINER, limits={"cpus": {"value": 1}}
)
T = "launch.task"

MALFORMED: list[tuple[str, str, dict[str, Any], str]] = [
    # unknown nested keys
    (
        "ip_address_unknown_key",
        "scheduler.Event",
        _with(UPDATE_NET, f"{NET}.ip_addresses.0.ipaddress", "10.0.0.1"),
        "Unknown field 'ipaddress' in message 'NetworkInfo.IPAddress'",
    ),
    (
        "reservation_unknown_key",
        "scheduler.Event",
        _with(OFFER_RES, f"{RES}.reservations.0.owner", "x"),
        "Unknown field 'owner' in message 'Resource.ReservationInfo'",
    ),
    (
        "revocable_unknown_key",
        "scheduler.Event",
        _with(OFFER_RES, f"{RES}.revocable", {"x": 1}),
        "Unknown field 'x' in message 'Resource.RevocableInfo'",
    ),
    (
        "offer_operations_not_in_offer",
        "scheduler.Event",
        _with(OFFER_RES, "offers.offers.0.offer_operations", []),
        "Unknown field 'offer_operations' in message 'Offer'",
    ),
    (
        "health_check_unknown_key",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.health_check.http.host", "h"),
        "Unknown field 'host' in message 'HealthCheck.HTTPCheckInfo'",
    ),
    (
        "seccomp_unknown_key",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.container.linux_info.seccomp.profile", "p"),
        "Unknown field 'profile' in message 'SeccompInfo'",
    ),
    (
        "cgroup_unknown_key",
        "scheduler.Event",
        update(container_status={"cgroup_info": {"blkio": {}}}),
        "Unknown field 'blkio' in message 'CgroupInfo'",
    ),
    # wrong scalar types
    (
        "reservation_role_number",
        "scheduler.Event",
        _with(OFFER_RES, f"{RES}.reservations.0.role", 5),
        "Not expecting a JSON number for field 'role'",
    ),
    (
        "ip_address_number",
        "scheduler.Event",
        _with(UPDATE_NET, f"{NET}.ip_addresses.0.ip_address", 167772161),
        "Not expecting a JSON number for field 'ip_address'",
    ),
    (
        "groups_not_array",
        "scheduler.Event",
        _with(UPDATE_NET, f"{NET}.groups", "a"),
        "Not expecting a JSON string for field 'groups'",
    ),
    (
        "health_port_text",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.health_check.http.port", "eighty"),
        "Not expecting a JSON string for field 'port'",
    ),
    (
        "health_delay_bool",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.health_check.delay_seconds", True),
        "Not expecting a JSON boolean for field 'delay_seconds'",
    ),
    (
        "check_status_succeeded_text",
        "scheduler.Event",
        update(check_status={"type": "TCP", "tcp": {"succeeded": "yes"}}),
        "Not expecting a JSON string for field 'succeeded'",
    ),
    (
        "secret_data_not_base64",
        "executor.Event",
        launch(
            command={
                "environment": {
                    "variables": [{"name": "A", "type": "SECRET", "secret": {"value": {"data": "%%"}}}]
                }
            }
        ),
        "Failed to base64 decode bytes field 'data'",
    ),
    (
        "limits_not_object",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.limits", [1]),
        "Not expecting a JSON array for field 'limits'",
    ),
    (
        "limits_value_number",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.limits", {"cpus": {"value": "lots"}}),
        "Not expecting a JSON string for field 'value'",
    ),
    (
        "volume_context_value_number",
        "executor.Event",
        _with(
            LAUNCH_FULL,
            f"{T}.container.volumes.4.source.csi_volume.static_provisioning.volume_context",
            {"a": 1},
        ),
        "Not expecting a JSON number for field 'value'",
    ),
    # enum names (strict)
    (
        "reservation_type",
        "scheduler.Event",
        _with(OFFER_RES, f"{RES}.reservations.0.type", "DYNAMIC_RESERVATION"),
        "Failed to find enum for 'DYNAMIC_RESERVATION'",
    ),
    (
        "health_check_type",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.health_check.type", "HTTPS"),
        "Failed to find enum for 'HTTPS'",
    ),
    (
        "ip_protocol_case",
        "scheduler.Event",
        _with(UPDATE_NET, f"{NET}.ip_addresses.0.protocol", "IPV4"),
        "Failed to find enum for 'IPV4'",
    ),
    (
        "capability_repeated_enum",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.container.linux_info.bounding_capabilities.capabilities", ["CAP_CHOWN"]),
        "Failed to find enum for 'CAP_CHOWN'",
    ),
    (
        "discovery_visibility_number",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.discovery.visibility", 1),
        "Not expecting a JSON number for field 'visibility'",
    ),
    # missing required nested fields
    (
        "port_mapping_container_port",
        "scheduler.Event",
        _with(UPDATE_NET, f"{NET}.port_mappings", [{"host_port": 31000}]),
        "Missing required fields: "
        "update.status.container_status.network_infos[0].port_mappings[0].container_port",
    ),
    (
        "http_health_port",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.health_check.http", {"path": "/"}),
        "Missing required fields: launch.task.health_check.http.port",
    ),
    (
        "discovery_visibility",
        "executor.Event",
        launch(discovery={"name": "svc"}),
        "Missing required fields: launch.task.discovery.visibility",
    ),
    (
        "persistence_id_and_source_type",
        "scheduler.Event",
        offer(resource(disk={"persistence": {"principal": "p"}, "source": {"path": {"root": "/"}}})),
        "Missing required fields: offers.offers[0].resources[0].disk.persistence.id, "
        "offers.offers[0].resources[0].disk.source.type",
    ),
    (
        "fault_domain_zone",
        "scheduler.Event",
        offer(resource(), domain={"fault_domain": {"region": {"name": "eu"}}}),
        "Missing required fields: offers.offers[0].domain.fault_domain.zone",
    ),
    (
        "limits_entry_value",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.limits", {"cpus": {"value": 1}, "mem": {}}),
        "Missing required fields: launch.task.limits[1].value.value",
    ),
    (
        "window_size_columns",
        "executor.Event",
        _with(LAUNCH_FULL, f"{T}.container.tty_info", {"window_size": {"rows": 1}}),
        "Missing required fields: launch.task.container.tty_info.window_size.columns",
    ),
    (
        "check_command_command",
        "executor.Event",
        launch(check={"type": "COMMAND", "command": {}}),
        "Missing required fields: launch.task.check.command.command",
    ),
    (
        "operation_status_state",
        "scheduler.Event",
        {"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {"message": "m"}}},
        "Missing required fields: update_operation_status.status.state",
    ),
]


@pytest.mark.parametrize(
    "obj,message,error", [(obj, msg, err) for _, msg, obj, err in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_nested_messages_give_stout_errors(obj: dict[str, Any], message: str, error: str) -> None:
    assert protojson.strict_errors(obj, message) == [error]


def test_lenient_parse_drops_unknown_nested_keys_and_optional_enum_names() -> None:
    obj = _with(UPDATE_NET, f"{NET}.ip_addresses.0.ipaddress", "x")
    obj = _with(obj, f"{NET}.ip_addresses.1.protocol", "IPv5")
    obj = _with(obj, f"{NET}.labels.color", "red")
    converted = protojson.convert(obj, "scheduler.Event")
    network = converted["update"]["status"]["container_status"]["network_infos"][0]
    assert network["ip_addresses"] == [{"ip_address": "10.0.0.1"}, {}]
    assert network["labels"] == {"labels": [{"key": "k", "value": "v"}]}
    launched = protojson.convert(
        _with(LAUNCH_FULL, f"{T}.container.linux_info.bounding_capabilities.capabilities", ["CHOWN", "NOPE"]),
        "executor.Event",
    )
    assert launched["launch"]["task"]["container"]["linux_info"]["bounding_capabilities"] == {
        "capabilities": ["CHOWN"]
    }


def test_limits_map_keeps_its_keys() -> None:
    converted = protojson.convert(
        _with(LAUNCH_FULL, f"{T}.limits", {"cpus": {"value": 2}, "mem": None}), "executor.Event"
    )
    assert converted["launch"]["task"]["limits"] == {"cpus": {"value": 2}}


def _reachable(root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in prototables.MESSAGES[name].values():
            kind, _ = protojson.split_spec(spec)
            kind = kind.removeprefix("map:")
            if kind not in SCALARS and not kind.startswith("enum:"):
                todo.append(kind)
    return seen


@pytest.mark.parametrize("root", ["scheduler.Event", "executor.Event", "scheduler.Call", "executor.Call"])
def test_every_reachable_field_has_a_known_kind(root: str) -> None:
    unknown = [
        f"{name}.{key}"
        for name in sorted(_reachable(root))
        for key, spec in prototables.MESSAGES[name].items()
        if (kind := protojson.split_spec(spec)[0].removeprefix("map:")) not in SCALARS
        and not kind.startswith("enum:")
        and kind not in prototables.MESSAGES
    ]
    assert unknown == []


def test_agent_info_has_no_capabilities_field() -> None:
    """v1 AgentInfo (mesos.proto) defines the nested Capability message but no field carrying it."""
    obj = {
        "type": "SUBSCRIBED",
        "subscribed": {
            "executor_info": {"executor_id": _ids("e")},
            "framework_info": {"user": "u", "name": "f"},
            "agent_info": {"hostname": "h", "capabilities": [{"type": "MULTI_ROLE"}]},
        },
    }
    assert protojson.strict_errors(obj, "executor.Event") == [
        "Unknown field 'capabilities' in message 'AgentInfo'"
    ]


def test_offer_constraints_parse_as_their_messages() -> None:
    constraint = {"selector": {"attribute_name": "rack"}, "predicate": {"text_equals": {"value": "r1"}}}
    groups = [{"attribute_constraints": [constraint]}]
    call = {
        "type": "SUBSCRIBE",
        "subscribe": {
            "framework_info": {"user": "u", "name": "f"},
            "offer_constraints": {"role_constraints": {"tf": {"groups": groups}}},
        },
    }
    assert protojson.strict_errors(call, "scheduler.Call") == []
    call["subscribe"]["offer_constraints"]["role_constraints"]["tf"]["groups"][0]["attribute_constraints"] = [
        {"selector": {"attribute_name": "rack"}}
    ]
    assert protojson.strict_errors(call, "scheduler.Call") == [
        "Missing required fields: subscribe.offer_constraints.role_constraints[0].value.groups[0]"
        ".attribute_constraints[0].predicate"
    ]


def test_every_referenced_message_and_enum_is_defined() -> None:
    for name, fields in prototables.MESSAGES.items():
        for key, spec in fields.items():
            kind = protojson.split_spec(spec)[0].removeprefix("map:")
            if kind.startswith("enum:"):
                assert kind[5:] in prototables.ENUMS, (name, key)
            elif kind not in SCALARS:
                assert kind in prototables.MESSAGES, (name, key)
