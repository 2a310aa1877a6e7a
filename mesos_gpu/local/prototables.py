"""The Mesos v1 proto tables: every enum's values and every message's fields with their types, labels and
field numbers, for the subset of the v1 scheduler, executor and operator APIs the local cluster speaks.
Data, and `field_spec` to read a field's spec; `protojson` (JSON) and `protobuf` (binary) read them."""

from __future__ import annotations

from typing import NamedTuple

# A field spec is "<type><label>=<number>": label "!" required, "*" repeated, "" optional; <number> the
# field number on the protobuf wire. Types are the proto scalar types (string, bytes, bool, double,
# int32, int64, uint32, uint64), enum:<Name>, map:<type> (a proto map<string, type>, a JSON object), or
# a message name. An enum is {value name: number}.
#
# Numbers and scalar types are facts read from apache/mesos' include/mesos/v1/mesos.proto,
# scheduler/scheduler.proto, executor/executor.proto and master/master.proto. What the copies searched
# predate (Call.Type UPDATE_FRAMEWORK = 17, Call.update_framework = 19, the offer_constraints = 3 fields,
# AttributeConstraint / OfferConstraints, the operator call types 36-39) is from a fork carrying the
# 1.11 protos (m3scluster/clusterd); the executor HEARTBEAT call (4) and event (9) are from
# ../shared/spec/mesos-protocol.md section 2.8. Message names are the table's own: nested proto names
# are shortened where unambiguous (ID is FrameworkID/OfferID/AgentID/TaskID/ExecutorID/OperationID/
# ResourceProviderID, URI is CommandInfo.URI, Variable is Environment.Variable, Capability is
# FrameworkInfo.Capability, PortMapping is ContainerInfo.DockerInfo.PortMapping, ...).

SCALARS = frozenset({"string", "bytes", "bool", "double", "int32", "int64", "uint32", "uint64"})
INTEGERS = frozenset({"int32", "int64", "uint32", "uint64"})


class FieldSpec(NamedTuple):
    """One field's spec read: `kind` (scalar type, `enum:<Name>`, `map:<type>` or message name),
    `label` ("!" required, "*" repeated, "" optional) and its field `number`."""

    kind: str
    label: str
    number: int


def field_spec(spec: str) -> FieldSpec:
    """`"ID!=2"` -> FieldSpec("ID", "!", 2)."""
    body, _, number = spec.rpartition("=")
    if body[-1] in "!*":
        return FieldSpec(body[:-1], body[-1], int(number))
    return FieldSpec(body, "", int(number))


def _enum(text: str) -> dict[str, int]:
    """`"A=0 B=1"` -> {"A": 0, "B": 1}."""
    values: dict[str, int] = {}
    for item in text.split():
        name, _, number = item.partition("=")
        values[name] = int(number)
    return values


def _counting(start: int, names: str) -> dict[str, int]:
    """Names numbered consecutively from `start`, as the proto lists them."""
    return {name: start + index for index, name in enumerate(names.split())}


ENUMS: dict[str, dict[str, int]] = {
    "Call.Type": _enum(
        "UNKNOWN=0 SUBSCRIBE=1 TEARDOWN=2 ACCEPT=3 DECLINE=4 ACCEPT_INVERSE_OFFERS=13 "
        "DECLINE_INVERSE_OFFERS=14 REVIVE=5 KILL=6 SHUTDOWN=7 ACKNOWLEDGE=8 ACKNOWLEDGE_OPERATION_STATUS=15 "
        "RECONCILE=9 RECONCILE_OPERATIONS=16 MESSAGE=10 REQUEST=11 SUPPRESS=12 UPDATE_FRAMEWORK=17"
    ),
    "Event.Type": _enum(
        "UNKNOWN=0 SUBSCRIBED=1 OFFERS=2 INVERSE_OFFERS=9 RESCIND=3 RESCIND_INVERSE_OFFER=10 UPDATE=4 "
        "UPDATE_OPERATION_STATUS=11 MESSAGE=5 FAILURE=6 ERROR=7 HEARTBEAT=8"
    ),
    "ExecutorCall.Type": _enum("UNKNOWN=0 SUBSCRIBE=1 UPDATE=2 MESSAGE=3 HEARTBEAT=4"),
    "ExecutorEvent.Type": _enum(
        "UNKNOWN=0 SUBSCRIBED=1 LAUNCH=2 LAUNCH_GROUP=8 KILL=3 ACKNOWLEDGED=4 MESSAGE=5 ERROR=6 SHUTDOWN=7 "
        "HEARTBEAT=9"
    ),
    "Capability": _enum(
        "UNKNOWN=0 REVOCABLE_RESOURCES=1 TASK_KILLING_STATE=2 GPU_RESOURCES=3 SHARED_RESOURCES=4 "
        "PARTITION_AWARE=5 MULTI_ROLE=6 RESERVATION_REFINEMENT=7 REGION_AWARE=8"
    ),
    "MasterCapability": _enum("UNKNOWN=0 AGENT_UPDATE=1 AGENT_DRAINING=2 QUOTA_V2=3"),
    "Value.Type": _enum("SCALAR=0 RANGES=1 SET=2 TEXT=3"),
    "Operation.Type": _enum(
        "UNKNOWN=0 LAUNCH=1 LAUNCH_GROUP=6 RESERVE=2 UNRESERVE=3 CREATE=4 DESTROY=5 GROW_VOLUME=11 "
        "SHRINK_VOLUME=12 CREATE_DISK=13 DESTROY_DISK=14"
    ),
    "ExecutorInfo.Type": _enum("UNKNOWN=0 DEFAULT=1 CUSTOM=2"),
    "ContainerInfo.Type": _enum("DOCKER=1 MESOS=2"),
    "DockerInfo.Network": _enum("HOST=1 BRIDGE=2 NONE=3 USER=4"),
    "Image.Type": _enum("APPC=1 DOCKER=2"),
    "Volume.Mode": _enum("RW=1 RO=2"),
    "Variable.Type": _enum("UNKNOWN=0 VALUE=1 SECRET=2"),
    "TaskState": _enum(
        "TASK_STAGING=6 TASK_STARTING=0 TASK_RUNNING=1 TASK_KILLING=8 TASK_FINISHED=2 TASK_FAILED=3 "
        "TASK_KILLED=4 TASK_ERROR=7 TASK_LOST=5 TASK_DROPPED=9 TASK_UNREACHABLE=10 TASK_GONE=11 "
        "TASK_GONE_BY_OPERATOR=12 TASK_UNKNOWN=13"
    ),
    "Source": _enum("SOURCE_MASTER=0 SOURCE_AGENT=1 SOURCE_EXECUTOR=2"),
    "Reason": _enum(
        "REASON_COMMAND_EXECUTOR_FAILED=0 REASON_CONTAINER_LAUNCH_FAILED=21 REASON_CONTAINER_LIMITATION=19 "
        "REASON_CONTAINER_LIMITATION_DISK=20 REASON_CONTAINER_LIMITATION_MEMORY=8 "
        "REASON_CONTAINER_PREEMPTED=17 REASON_CONTAINER_UPDATE_FAILED=22 "
        "REASON_MAX_COMPLETION_TIME_REACHED=33 REASON_EXECUTOR_REGISTRATION_TIMEOUT=23 "
        "REASON_EXECUTOR_REREGISTRATION_TIMEOUT=24 REASON_EXECUTOR_TERMINATED=1 "
        "REASON_EXECUTOR_UNREGISTERED=2 REASON_FRAMEWORK_REMOVED=3 REASON_GC_ERROR=4 "
        "REASON_INVALID_FRAMEWORKID=5 REASON_INVALID_OFFERS=6 REASON_IO_SWITCHBOARD_EXITED=27 "
        "REASON_MASTER_DISCONNECTED=7 REASON_RECONCILIATION=9 REASON_RESOURCES_UNKNOWN=18 "
        "REASON_AGENT_DISCONNECTED=10 REASON_AGENT_DRAINING=34 REASON_AGENT_REMOVED=11 "
        "REASON_AGENT_REMOVED_BY_OPERATOR=31 REASON_AGENT_REREGISTERED=32 REASON_AGENT_RESTARTED=12 "
        "REASON_AGENT_UNKNOWN=13 REASON_TASK_KILLED_DURING_LAUNCH=30 REASON_TASK_CHECK_STATUS_UPDATED=28 "
        "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED=29 REASON_TASK_GROUP_INVALID=25 "
        "REASON_TASK_GROUP_UNAUTHORIZED=26 REASON_TASK_INVALID=14 REASON_TASK_UNAUTHORIZED=15 "
        "REASON_TASK_UNKNOWN=16"
    ),
    "AgentInfo.Capability.Type": _enum(
        "UNKNOWN=0 MULTI_ROLE=1 HIERARCHICAL_ROLE=2 RESERVATION_REFINEMENT=3 RESOURCE_PROVIDER=4 "
        "RESIZE_VOLUME=5 AGENT_OPERATION_FEEDBACK=6 AGENT_DRAINING=7 TASK_RESOURCE_LIMITS=8"
    ),
    "Resource.ReservationInfo.Type": _enum("UNKNOWN=0 STATIC=1 DYNAMIC=2"),
    "Resource.DiskInfo.Source.Type": _enum("UNKNOWN=0 PATH=1 MOUNT=2 BLOCK=3 RAW=4"),
    "NetworkInfo.Protocol": _enum("IPv4=1 IPv6=2"),
    "HealthCheck.Type": _enum("UNKNOWN=0 COMMAND=1 HTTP=2 TCP=3"),
    "CheckInfo.Type": _enum("UNKNOWN=0 COMMAND=1 HTTP=2 TCP=3"),
    "DiscoveryInfo.Visibility": _enum("FRAMEWORK=0 CLUSTER=1 EXTERNAL=2"),
    "CapabilityInfo.Capability": {
        "UNKNOWN": 0,
        **_counting(
            1000,
            "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
            "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
            "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
            "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
            "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE",
        ),
    },
    "LinuxInfo.IpcMode": _enum("UNKNOWN=0 PRIVATE=1 SHARE_PARENT=2"),
    "RLimitInfo.RLimit.Type": {
        "UNKNOWN": 0,
        **_counting(
            1,
            "RLMT_AS RLMT_CORE RLMT_CPU RLMT_DATA RLMT_FSIZE RLMT_LOCKS RLMT_MEMLOCK RLMT_MSGQUEUE "
            "RLMT_NICE RLMT_NOFILE RLMT_NPROC RLMT_RSS RLMT_RTPRIO RLMT_RTTIME RLMT_SIGPENDING RLMT_STACK",
        ),
    },
    "Secret.Type": _enum("UNKNOWN=0 REFERENCE=1 VALUE=2"),
    "MountPropagation.Mode": _enum("UNKNOWN=0 HOST_TO_CONTAINER=1 BIDIRECTIONAL=2"),
    "Volume.Source.Type": _enum("UNKNOWN=0 DOCKER_VOLUME=1 HOST_PATH=4 SANDBOX_PATH=2 SECRET=3 CSI_VOLUME=5"),
    "Volume.Source.SandboxPath.Type": _enum("UNKNOWN=0 SELF=1 PARENT=2"),
    "CSIVolume.AccessMode.Mode": _enum(
        "UNKNOWN=0 SINGLE_NODE_WRITER=1 SINGLE_NODE_READER_ONLY=2 MULTI_NODE_READER_ONLY=3 "
        "MULTI_NODE_SINGLE_WRITER=4 MULTI_NODE_MULTI_WRITER=5"
    ),
    "OperationState": _enum(
        "OPERATION_UNSUPPORTED=0 OPERATION_PENDING=1 OPERATION_FINISHED=2 OPERATION_FAILED=3 "
        "OPERATION_ERROR=4 OPERATION_DROPPED=5 OPERATION_UNREACHABLE=6 OPERATION_GONE_BY_OPERATOR=7 "
        "OPERATION_RECOVERING=8 OPERATION_UNKNOWN=9"
    ),
    "AttributeConstraint.Selector.PseudoattributeType": _enum("UNKNOWN=0 HOSTNAME=1 REGION=2 ZONE=3"),
    # include/mesos/v1/master/master.proto (Mesos 1.11): the operator API's call types
    "MasterCall.Type": _enum(
        "UNKNOWN=0 GET_HEALTH=1 GET_FLAGS=2 GET_VERSION=3 GET_METRICS=4 GET_LOGGING_LEVEL=5 "
        "SET_LOGGING_LEVEL=6 LIST_FILES=7 READ_FILE=8 GET_STATE=9 GET_AGENTS=10 GET_FRAMEWORKS=11 "
        "GET_EXECUTORS=12 GET_OPERATIONS=33 GET_TASKS=13 GET_ROLES=14 GET_WEIGHTS=15 UPDATE_WEIGHTS=16 "
        "GET_MASTER=17 SUBSCRIBE=18 RESERVE_RESOURCES=19 UNRESERVE_RESOURCES=20 CREATE_VOLUMES=21 "
        "DESTROY_VOLUMES=22 GROW_VOLUME=34 SHRINK_VOLUME=35 GET_MAINTENANCE_STATUS=23 "
        "GET_MAINTENANCE_SCHEDULE=24 UPDATE_MAINTENANCE_SCHEDULE=25 START_MAINTENANCE=26 "
        "STOP_MAINTENANCE=27 DRAIN_AGENT=37 DEACTIVATE_AGENT=38 REACTIVATE_AGENT=39 GET_QUOTA=28 "
        "UPDATE_QUOTA=36 SET_QUOTA=29 REMOVE_QUOTA=30 TEARDOWN=31 MARK_AGENT_GONE=32"
    ),
}

MESSAGES: dict[str, dict[str, str]] = {
    "ID": {"value": "string!=1"},
    "Label": {"key": "string!=1", "value": "string=2"},
    "Labels": {"labels": "Label*=1"},
    "DurationInfo": {"nanoseconds": "int64!=1"},
    "TimeInfo": {"nanoseconds": "int64!=1"},
    "Value.Scalar": {"value": "double!=1"},
    "Value.Range": {"begin": "uint64!=1", "end": "uint64!=2"},
    "Value.Ranges": {"range": "Value.Range*=1"},
    "Value.Set": {"item": "string*=1"},
    "Value.Text": {"value": "string!=1"},
    "AllocationInfo": {"role": "string=1"},
    "Resource.ReservationInfo": {
        "type": "enum:Resource.ReservationInfo.Type=4",
        "role": "string=3",
        "principal": "string=1",
        "labels": "Labels=2",
    },
    "Resource.DiskInfo.Persistence": {"id": "string!=1", "principal": "string=2"},
    "Resource.DiskInfo.Source.Path": {"root": "string=1"},
    "Resource.DiskInfo.Source.Mount": {"root": "string=1"},
    "Resource.DiskInfo.Source": {
        "type": "enum:Resource.DiskInfo.Source.Type!=1",
        "path": "Resource.DiskInfo.Source.Path=2",
        "mount": "Resource.DiskInfo.Source.Mount=3",
        "vendor": "string=7",
        "id": "string=4",
        "metadata": "Labels=5",
        "profile": "string=6",
    },
    "Resource.DiskInfo": {
        "persistence": "Resource.DiskInfo.Persistence=1",
        "volume": "Volume=2",
        "source": "Resource.DiskInfo.Source=3",
    },
    "Resource.RevocableInfo": {},
    "Resource.SharedInfo": {},
    "Resource": {
        "name": "string!=1",
        "type": "enum:Value.Type!=2",
        "scalar": "Value.Scalar=3",
        "ranges": "Value.Ranges=4",
        "set": "Value.Set=5",
        "role": "string=6",
        "allocation_info": "AllocationInfo=11",
        "reservation": "Resource.ReservationInfo=8",
        "reservations": "Resource.ReservationInfo*=13",
        "disk": "Resource.DiskInfo=7",
        "revocable": "Resource.RevocableInfo=9",
        "shared": "Resource.SharedInfo=10",
        "provider_id": "ID=12",
    },
    "Attribute": {
        "name": "string!=1",
        "type": "enum:Value.Type!=2",
        "scalar": "Value.Scalar=3",
        "ranges": "Value.Ranges=4",
        "set": "Value.Set=6",
        "text": "Value.Text=5",
    },
    "Capability": {"type": "enum:Capability=1"},
    "MasterCapability": {"type": "enum:MasterCapability=1"},
    "OfferFilters.ResourceQuantities": {"quantities": "map:Value.Scalar=1"},
    "OfferFilters.MinAllocatableResources": {"quantities": "OfferFilters.ResourceQuantities*=1"},
    "OfferFilters": {"min_allocatable_resources": "OfferFilters.MinAllocatableResources=1"},
    "FrameworkInfo": {
        "user": "string!=1",
        "name": "string!=2",
        "id": "ID=3",
        "failover_timeout": "double=4",
        "checkpoint": "bool=5",
        "role": "string=6",
        "roles": "string*=12",
        "hostname": "string=7",
        "principal": "string=8",
        "webui_url": "string=9",
        "capabilities": "Capability*=10",
        "labels": "Labels=11",
        "offer_filters": "map:OfferFilters=13",
    },
    "Filters": {"refuse_seconds": "double=1"},
    "Secret.Reference": {"name": "string!=1", "key": "string=2"},
    "Secret.Value": {"data": "bytes!=1"},
    "Secret": {
        "type": "enum:Secret.Type=1",
        "reference": "Secret.Reference=2",
        "value": "Secret.Value=3",
    },
    "Variable": {
        "name": "string!=1",
        "type": "enum:Variable.Type=3",
        "value": "string=2",
        "secret": "Secret=4",
    },
    "Environment": {"variables": "Variable*=1"},
    "URI": {
        "value": "string!=1",
        "executable": "bool=2",
        "extract": "bool=3",
        "cache": "bool=4",
        "output_file": "string=5",
    },
    "CommandInfo": {
        "uris": "URI*=1",
        "environment": "Environment=2",
        "shell": "bool=6",
        "value": "string=3",
        "arguments": "string*=7",
        "user": "string=5",
    },
    "Credential": {"principal": "string!=1", "secret": "string=2"},
    "Image.Appc": {"name": "string!=1", "id": "string=2", "labels": "Labels=3"},
    "Image.Docker": {"name": "string!=1", "credential": "Credential=2", "config": "Secret=3"},
    "Image": {
        "type": "enum:Image.Type!=1",
        "appc": "Image.Appc=2",
        "docker": "Image.Docker=3",
        "cached": "bool=4",
    },
    "MountPropagation": {"mode": "enum:MountPropagation.Mode=1"},
    "Volume.Source.DockerVolume": {
        "driver": "string=1",
        "name": "string!=2",
        "driver_options": "Parameters=3",
    },
    "Volume.Source.HostPath": {"path": "string!=1", "mount_propagation": "MountPropagation=2"},
    "Volume.Source.SandboxPath": {"type": "enum:Volume.Source.SandboxPath.Type=1", "path": "string!=2"},
    "CSIVolume.BlockVolume": {},
    "CSIVolume.MountVolume": {"fs_type": "string=1", "mount_flags": "string*=2"},
    "CSIVolume.AccessMode": {"mode": "enum:CSIVolume.AccessMode.Mode!=1"},
    "CSIVolume.VolumeCapability": {
        "block": "CSIVolume.BlockVolume=1",
        "mount": "CSIVolume.MountVolume=2",
        "access_mode": "CSIVolume.AccessMode!=3",
    },
    "CSIVolume.StaticProvisioning": {
        "volume_id": "string!=1",
        "volume_capability": "CSIVolume.VolumeCapability!=2",
        "node_stage_secrets": "map:Secret=3",
        "node_publish_secrets": "map:Secret=4",
        "volume_context": "map:string=5",
    },
    "Volume.Source.CSIVolume": {
        "plugin_name": "string!=1",
        "static_provisioning": "CSIVolume.StaticProvisioning=2",
    },
    "Volume.Source": {
        "type": "enum:Volume.Source.Type=1",
        "docker_volume": "Volume.Source.DockerVolume=2",
        "host_path": "Volume.Source.HostPath=5",
        "sandbox_path": "Volume.Source.SandboxPath=3",
        "secret": "Secret=4",
        "csi_volume": "Volume.Source.CSIVolume=6",
    },
    "Volume": {
        "mode": "enum:Volume.Mode=3",
        "container_path": "string!=1",
        "host_path": "string=2",
        "image": "Image=4",
        "source": "Volume.Source=5",
    },
    "PortMapping": {"host_port": "uint32!=1", "container_port": "uint32!=2", "protocol": "string=3"},
    "Parameter": {"key": "string!=1", "value": "string!=2"},
    "Parameters": {"parameter": "Parameter*=1"},
    "NetworkInfo.IPAddress": {"protocol": "enum:NetworkInfo.Protocol=1", "ip_address": "string=2"},
    "NetworkInfo.PortMapping": {
        "host_port": "uint32!=1",
        "container_port": "uint32!=2",
        "protocol": "string=3",
    },
    "NetworkInfo": {
        "ip_addresses": "NetworkInfo.IPAddress*=5",
        "name": "string=6",
        "groups": "string*=3",
        "labels": "Labels=4",
        "port_mappings": "NetworkInfo.PortMapping*=7",
    },
    "CapabilityInfo": {"capabilities": "enum:CapabilityInfo.Capability*=1"},
    "SeccompInfo": {"profile_name": "string=1", "unconfined": "bool=2"},
    "LinuxInfo": {
        "capability_info": "CapabilityInfo=1",
        "bounding_capabilities": "CapabilityInfo=2",
        "effective_capabilities": "CapabilityInfo=3",
        "share_pid_namespace": "bool=4",
        "seccomp": "SeccompInfo=5",
        "ipc_mode": "enum:LinuxInfo.IpcMode=6",
        "shm_size": "uint32=7",
        "share_cgroups": "bool=8",
    },
    "RLimitInfo.RLimit": {"type": "enum:RLimitInfo.RLimit.Type=1", "hard": "uint64=2", "soft": "uint64=3"},
    "RLimitInfo": {"rlimits": "RLimitInfo.RLimit*=1"},
    "TTYInfo.WindowSize": {"rows": "uint32!=1", "columns": "uint32!=2"},
    "TTYInfo": {"window_size": "TTYInfo.WindowSize=1"},
    "DockerInfo": {
        "image": "string!=1",
        "network": "enum:DockerInfo.Network=2",
        "port_mappings": "PortMapping*=3",
        "privileged": "bool=4",
        "parameters": "Parameter*=5",
        "force_pull_image": "bool=6",
        "volume_driver": "string=7",
    },
    "MesosInfo": {"image": "Image=1"},
    "ContainerInfo": {
        "type": "enum:ContainerInfo.Type!=1",
        "volumes": "Volume*=2",
        "hostname": "string=4",
        "docker": "DockerInfo=3",
        "mesos": "MesosInfo=5",
        "network_infos": "NetworkInfo*=7",
        "linux_info": "LinuxInfo=8",
        "rlimit_info": "RLimitInfo=9",
        "tty_info": "TTYInfo=10",
    },
    "KillPolicy": {"grace_period": "DurationInfo=1"},
    "Port": {
        "number": "uint32!=1",
        "name": "string=2",
        "protocol": "string=3",
        "visibility": "enum:DiscoveryInfo.Visibility=4",
        "labels": "Labels=5",
    },
    "Ports": {"ports": "Port*=1"},
    "DiscoveryInfo": {
        "visibility": "enum:DiscoveryInfo.Visibility!=1",
        "name": "string=2",
        "environment": "string=3",
        "location": "string=4",
        "version": "string=5",
        "ports": "Ports=6",
        "labels": "Labels=7",
    },
    "HealthCheck.HTTPCheckInfo": {
        "protocol": "enum:NetworkInfo.Protocol=5",
        "scheme": "string=3",
        "port": "uint32!=1",
        "path": "string=2",
        "statuses": "uint32*=4",
    },
    "HealthCheck.TCPCheckInfo": {"protocol": "enum:NetworkInfo.Protocol=2", "port": "uint32!=1"},
    "HealthCheck": {
        "delay_seconds": "double=2",
        "interval_seconds": "double=3",
        "timeout_seconds": "double=4",
        "consecutive_failures": "uint32=5",
        "grace_period_seconds": "double=6",
        "type": "enum:HealthCheck.Type=8",
        "command": "CommandInfo=7",
        "http": "HealthCheck.HTTPCheckInfo=1",
        "tcp": "HealthCheck.TCPCheckInfo=9",
    },
    "CheckInfo.Command": {"command": "CommandInfo!=1"},
    "CheckInfo.Http": {"port": "uint32!=1", "path": "string=2"},
    "CheckInfo.Tcp": {"port": "uint32!=1"},
    "CheckInfo": {
        "type": "enum:CheckInfo.Type=1",
        "command": "CheckInfo.Command=2",
        "http": "CheckInfo.Http=3",
        "tcp": "CheckInfo.Tcp=7",
        "delay_seconds": "double=4",
        "interval_seconds": "double=5",
        "timeout_seconds": "double=6",
    },
    "CheckStatusInfo.Command": {"exit_code": "int32=1"},
    "CheckStatusInfo.Http": {"status_code": "uint32=1"},
    "CheckStatusInfo.Tcp": {"succeeded": "bool=1"},
    "CheckStatusInfo": {
        "type": "enum:CheckInfo.Type=1",
        "command": "CheckStatusInfo.Command=2",
        "http": "CheckStatusInfo.Http=3",
        "tcp": "CheckStatusInfo.Tcp=4",
    },
    "ExecutorInfo": {
        "type": "enum:ExecutorInfo.Type=15",
        "executor_id": "ID!=1",
        "framework_id": "ID=8",
        "command": "CommandInfo=7",
        "container": "ContainerInfo=11",
        "resources": "Resource*=5",
        "name": "string=9",
        "source": "string=10",
        "data": "bytes=4",
        "discovery": "DiscoveryInfo=12",
        "shutdown_grace_period": "DurationInfo=13",
        "labels": "Labels=14",
    },
    "TaskInfo": {
        "name": "string!=1",
        "task_id": "ID!=2",
        "agent_id": "ID!=3",
        "resources": "Resource*=4",
        "executor": "ExecutorInfo=5",
        "command": "CommandInfo=7",
        "container": "ContainerInfo=9",
        "health_check": "HealthCheck=8",
        "check": "CheckInfo=13",
        "kill_policy": "KillPolicy=12",
        "data": "bytes=6",
        "labels": "Labels=10",
        "discovery": "DiscoveryInfo=11",
        "max_completion_time": "DurationInfo=14",
        "limits": "map:Value.Scalar=15",
    },
    "TaskGroupInfo": {"tasks": "TaskInfo*=1"},
    "Operation.Launch": {"task_infos": "TaskInfo*=1"},
    "Operation.LaunchGroup": {"executor": "ExecutorInfo!=1", "task_group": "TaskGroupInfo!=2"},
    "Operation.Reserve": {"source": "Resource*=2", "resources": "Resource*=1"},
    "Operation.Unreserve": {"resources": "Resource*=1"},
    "Operation.Create": {"volumes": "Resource*=1"},
    "Operation.Destroy": {"volumes": "Resource*=1"},
    "Operation.GrowVolume": {"volume": "Resource!=1", "addition": "Resource!=2"},
    "Operation.ShrinkVolume": {"volume": "Resource!=1", "subtract": "Value.Scalar!=2"},
    "Operation.CreateDisk": {
        "source": "Resource!=1",
        "target_type": "enum:Resource.DiskInfo.Source.Type!=2",
        "target_profile": "string=3",
    },
    "Operation.DestroyDisk": {"source": "Resource!=1"},
    "Operation": {
        "type": "enum:Operation.Type=1",
        "id": "ID=12",
        "launch": "Operation.Launch=2",
        "launch_group": "Operation.LaunchGroup=7",
        "reserve": "Operation.Reserve=3",
        "unreserve": "Operation.Unreserve=4",
        "create": "Operation.Create=5",
        "destroy": "Operation.Destroy=6",
        "grow_volume": "Operation.GrowVolume=13",
        "shrink_volume": "Operation.ShrinkVolume=14",
        "create_disk": "Operation.CreateDisk=15",
        "destroy_disk": "Operation.DestroyDisk=16",
    },
    # offer constraints (scheduler.proto): the selector and predicate are proto `oneof`s
    "AttributeConstraint.Selector": {
        "pseudoattribute_type": "enum:AttributeConstraint.Selector.PseudoattributeType=1",
        "attribute_name": "string=2",
    },
    "AttributeConstraint.Predicate.Exists": {},
    "AttributeConstraint.Predicate.NotExists": {},
    "AttributeConstraint.Predicate.TextEquals": {"value": "string!=1"},
    "AttributeConstraint.Predicate.TextNotEquals": {"value": "string!=1"},
    "AttributeConstraint.Predicate.TextMatches": {"regex": "string!=1"},
    "AttributeConstraint.Predicate.TextNotMatches": {"regex": "string!=1"},
    "AttributeConstraint.Predicate": {
        "exists": "AttributeConstraint.Predicate.Exists=1",
        "not_exists": "AttributeConstraint.Predicate.NotExists=2",
        "text_equals": "AttributeConstraint.Predicate.TextEquals=3",
        "text_not_equals": "AttributeConstraint.Predicate.TextNotEquals=4",
        "text_matches": "AttributeConstraint.Predicate.TextMatches=5",
        "text_not_matches": "AttributeConstraint.Predicate.TextNotMatches=6",
    },
    "AttributeConstraint": {
        "selector": "AttributeConstraint.Selector!=1",
        "predicate": "AttributeConstraint.Predicate!=2",
    },
    "OfferConstraints.RoleConstraints.Group": {"attribute_constraints": "AttributeConstraint*=1"},
    "OfferConstraints.RoleConstraints": {"groups": "OfferConstraints.RoleConstraints.Group*=1"},
    "OfferConstraints": {"role_constraints": "map:OfferConstraints.RoleConstraints=1"},
    # scheduler calls
    "Call.Subscribe": {
        "framework_info": "FrameworkInfo!=1",
        "suppressed_roles": "string*=2",
        "offer_constraints": "OfferConstraints=3",
    },
    "Call.Accept": {"offer_ids": "ID*=1", "operations": "Operation*=2", "filters": "Filters=3"},
    "Call.Decline": {"offer_ids": "ID*=1", "filters": "Filters=2"},
    "Call.AcceptInverseOffers": {"inverse_offer_ids": "ID*=1", "filters": "Filters=2"},
    "Call.DeclineInverseOffers": {"inverse_offer_ids": "ID*=1", "filters": "Filters=2"},
    "Call.Revive": {"roles": "string*=1"},
    "Call.Suppress": {"roles": "string*=1"},
    "Call.Kill": {"task_id": "ID!=1", "agent_id": "ID=2", "kill_policy": "KillPolicy=3"},
    "Call.Shutdown": {"executor_id": "ID!=1", "agent_id": "ID!=2"},
    "Call.Acknowledge": {"agent_id": "ID!=1", "task_id": "ID!=2", "uuid": "bytes!=3"},
    "Call.AcknowledgeOperationStatus": {
        "agent_id": "ID=1",
        "resource_provider_id": "ID=2",
        "uuid": "bytes!=3",
        "operation_id": "ID!=4",
    },
    "Call.Reconcile.Task": {"task_id": "ID!=1", "agent_id": "ID=2"},
    "Call.Reconcile": {"tasks": "Call.Reconcile.Task*=1"},
    "Call.ReconcileOperations.Operation": {
        "operation_id": "ID!=1",
        "agent_id": "ID=2",
        "resource_provider_id": "ID=3",
    },
    "Call.ReconcileOperations": {"operations": "Call.ReconcileOperations.Operation*=1"},
    "Call.Message": {"agent_id": "ID!=1", "executor_id": "ID!=2", "data": "bytes!=3"},
    "Request": {"agent_id": "ID=1", "resources": "Resource*=2"},
    "Call.Request": {"requests": "Request*=1"},
    "Call.UpdateFramework": {
        "framework_info": "FrameworkInfo!=1",
        "suppressed_roles": "string*=2",
        "offer_constraints": "OfferConstraints=3",
    },
    "scheduler.Call": {
        "framework_id": "ID=1",
        "type": "enum:Call.Type=2",
        "subscribe": "Call.Subscribe=3",
        "accept": "Call.Accept=4",
        "decline": "Call.Decline=5",
        "accept_inverse_offers": "Call.AcceptInverseOffers=13",
        "decline_inverse_offers": "Call.DeclineInverseOffers=14",
        "revive": "Call.Revive=15",
        "suppress": "Call.Suppress=16",
        "kill": "Call.Kill=6",
        "shutdown": "Call.Shutdown=7",
        "acknowledge": "Call.Acknowledge=8",
        "acknowledge_operation_status": "Call.AcknowledgeOperationStatus=17",
        "reconcile": "Call.Reconcile=9",
        "reconcile_operations": "Call.ReconcileOperations=18",
        "message": "Call.Message=10",
        "request": "Call.Request=11",
        "update_framework": "Call.UpdateFramework=19",
    },
    # events
    "Address": {"hostname": "string=1", "ip": "string=2", "port": "int32!=3"},
    "URL": {
        "scheme": "string!=1",
        "address": "Address!=2",
        "path": "string=3",
        "query": "Parameter*=4",
        "fragment": "string=5",
    },
    "DomainInfo.FaultDomain.RegionInfo": {"name": "string!=1"},
    "DomainInfo.FaultDomain.ZoneInfo": {"name": "string!=1"},
    "DomainInfo.FaultDomain": {
        "region": "DomainInfo.FaultDomain.RegionInfo!=1",
        "zone": "DomainInfo.FaultDomain.ZoneInfo!=2",
    },
    "DomainInfo": {"fault_domain": "DomainInfo.FaultDomain=1"},
    "Unavailability": {"start": "TimeInfo!=1", "duration": "DurationInfo=2"},
    "AgentInfo.Capability": {"type": "enum:AgentInfo.Capability.Type=1"},
    "MasterInfo": {
        "id": "string!=1",
        "ip": "uint32!=2",
        "port": "uint32!=3",
        "pid": "string=4",
        "hostname": "string=5",
        "version": "string=6",
        "address": "Address=7",
        "domain": "DomainInfo=8",
        "capabilities": "MasterCapability*=9",
    },
    # AgentInfo has no capabilities field (an agent's capabilities travel outside it)
    "AgentInfo": {
        "hostname": "string!=1",
        "port": "int32=8",
        "resources": "Resource*=3",
        "attributes": "Attribute*=5",
        "id": "ID=6",
        "domain": "DomainInfo=10",
    },
    "Offer": {
        "id": "ID!=1",
        "framework_id": "ID!=2",
        "agent_id": "ID!=3",
        "hostname": "string!=4",
        "url": "URL=8",
        "domain": "DomainInfo=11",
        "resources": "Resource*=5",
        "attributes": "Attribute*=7",
        "executor_ids": "ID*=6",
        "unavailability": "Unavailability=9",
        "allocation_info": "AllocationInfo=10",
    },
    "InverseOffer": {
        "id": "ID!=1",
        "url": "URL=2",
        "framework_id": "ID!=3",
        "agent_id": "ID=4",
        "unavailability": "Unavailability!=5",
        "resources": "Resource*=6",
    },
    "UUID": {"value": "bytes!=1"},
    "OperationStatus": {
        "operation_id": "ID=1",
        "state": "enum:OperationState!=2",
        "message": "string=3",
        "converted_resources": "Resource*=4",
        "uuid": "UUID=5",
        "agent_id": "ID=6",
        "resource_provider_id": "ID=7",
    },
    "CgroupInfo.NetCls": {"classid": "uint32=1"},
    "CgroupInfo": {"net_cls": "CgroupInfo.NetCls=1"},
    "TaskResourceLimitation": {"resources": "Resource*=1"},
    "ContainerStatus": {
        "container_id": "ContainerID=4",
        "network_infos": "NetworkInfo*=1",
        "cgroup_info": "CgroupInfo=2",
        "executor_pid": "uint32=3",
    },
    "ContainerID": {"value": "string!=1", "parent": "ContainerID=2"},
    "TaskStatus": {
        "task_id": "ID!=1",
        "state": "enum:TaskState!=2",
        "message": "string=4",
        "source": "enum:Source=9",
        "reason": "enum:Reason=10",
        "data": "bytes=3",
        "agent_id": "ID=5",
        "executor_id": "ID=7",
        "timestamp": "double=6",
        "uuid": "bytes=11",
        "healthy": "bool=8",
        "check_status": "CheckStatusInfo=15",
        "labels": "Labels=12",
        "container_status": "ContainerStatus=13",
        "unreachable_time": "TimeInfo=14",
        "limitation": "TaskResourceLimitation=16",
    },
    "Event.Subscribed": {
        "framework_id": "ID!=1",
        "heartbeat_interval_seconds": "double=2",
        "master_info": "MasterInfo=3",
    },
    "Event.Offers": {"offers": "Offer*=1"},
    "Event.InverseOffers": {"inverse_offers": "InverseOffer*=1"},
    "Event.Rescind": {"offer_id": "ID!=1"},
    "Event.RescindInverseOffer": {"inverse_offer_id": "ID!=1"},
    "Event.UpdateOperationStatus": {"status": "OperationStatus!=1"},
    "Event.Update": {"status": "TaskStatus!=1"},
    "Event.Message": {"agent_id": "ID!=1", "executor_id": "ID!=2", "data": "bytes!=3"},
    "Event.Failure": {"agent_id": "ID=1", "executor_id": "ID=2", "status": "int32=3"},
    "Event.Error": {"message": "string!=1"},
    "scheduler.Event": {
        "type": "enum:Event.Type=1",
        "subscribed": "Event.Subscribed=2",
        "offers": "Event.Offers=3",
        "rescind": "Event.Rescind=4",
        "update": "Event.Update=5",
        "message": "Event.Message=6",
        "failure": "Event.Failure=7",
        "error": "Event.Error=8",
        "inverse_offers": "Event.InverseOffers=9",
        "rescind_inverse_offer": "Event.RescindInverseOffer=10",
        "update_operation_status": "Event.UpdateOperationStatus=11",
    },
    # executor API
    "ExecutorCall.Subscribe": {
        "unacknowledged_tasks": "TaskInfo*=1",
        "unacknowledged_updates": "ExecutorCall.Update*=2",
    },
    "ExecutorCall.Update": {"status": "TaskStatus!=1"},
    "ExecutorCall.Message": {"data": "bytes!=2"},
    "executor.Call": {
        "executor_id": "ID!=1",
        "framework_id": "ID!=2",
        "type": "enum:ExecutorCall.Type=3",
        "subscribe": "ExecutorCall.Subscribe=4",
        "update": "ExecutorCall.Update=5",
        "message": "ExecutorCall.Message=6",
    },
    "ExecutorEvent.Subscribed": {
        "executor_info": "ExecutorInfo!=1",
        "framework_info": "FrameworkInfo!=2",
        "agent_info": "AgentInfo!=3",
        "container_id": "ContainerID=4",
    },
    "ExecutorEvent.Launch": {"task": "TaskInfo!=1"},
    "ExecutorEvent.LaunchGroup": {"task_group": "TaskGroupInfo!=1"},
    "ExecutorEvent.Kill": {"task_id": "ID!=1", "kill_policy": "KillPolicy=2"},
    "ExecutorEvent.Acknowledged": {"task_id": "ID!=1", "uuid": "bytes!=2"},
    "ExecutorEvent.Message": {"data": "bytes!=1"},
    "ExecutorEvent.Error": {"message": "string!=1"},
    # operator API: only the call's type (the read-only calls the local master answers take no payload;
    # the payload fields are unknown fields here, skipped by the binary decoder)
    "master.Call": {"type": "enum:MasterCall.Type=1"},
    "executor.Event": {
        "type": "enum:ExecutorEvent.Type=1",
        "subscribed": "ExecutorEvent.Subscribed=2",
        "acknowledged": "ExecutorEvent.Acknowledged=3",
        "launch": "ExecutorEvent.Launch=4",
        "launch_group": "ExecutorEvent.LaunchGroup=8",
        "kill": "ExecutorEvent.Kill=5",
        "message": "ExecutorEvent.Message=6",
        "error": "ExecutorEvent.Error=7",
    },
}
