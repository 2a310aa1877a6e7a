"""protobuf.py's properties: encode then decode is the identity over Hypothesis-generated messages of
the v1 tables, and the reference protobuf runtime (google.protobuf, fed descriptors built from the same
tables, no .proto files) reads our bytes and writes the same ones back."""

from __future__ import annotations

import base64
import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesos_gpu.local import protobuf, protojson
from mesos_gpu.local.prototables import ENUMS, INTEGERS, MESSAGES, field_spec
from tests.local.test_protobuf import ACKNOWLEDGE_BYTES

# ---------------------------------------------------------------------------------------------------
# Hypothesis: encode then decode is the identity over generated messages


def _scalar(kind: str) -> st.SearchStrategy[Any]:
    if kind == "string":
        return st.text(max_size=6)
    if kind == "bytes":
        return st.binary(max_size=6).map(lambda raw: base64.b64encode(raw).decode())
    if kind == "bool":
        return st.booleans()
    if kind == "double":
        words = st.sampled_from(["Infinity", "-Infinity", "NaN"])
        return st.floats(allow_nan=False, allow_infinity=False) | words
    if kind in INTEGERS:
        low, high = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}.get(
            kind, (0, 2 ** (32 if kind == "uint32" else 64) - 1)
        )
        return st.integers(low, high)
    return st.sampled_from(sorted(ENUMS[kind.removeprefix("enum:")]))


@functools.cache
def messages(name: str, depth: int = 2, map_size: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """JSON-form `name` messages: required fields always, optional ones while `depth` lasts."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for key, spec in MESSAGES[name].items():
        kind, label, _ = field_spec(spec)
        base = kind.removeprefix("map:")
        if base in MESSAGES and depth == 0 and label != "!":
            continue
        value = messages(base, max(depth - 1, 0), map_size) if base in MESSAGES else _scalar(base)
        if kind.startswith("map:"):  # an empty list or map is an absent field on the wire
            value = st.dictionaries(st.text(max_size=4), value, min_size=1, max_size=map_size)
        elif label == "*":
            value = st.lists(value, min_size=1, max_size=2)
        (required if label == "!" else optional)[key] = value
    return st.fixed_dictionaries(required, optional=optional)


ROOTS = ["scheduler.Call", "scheduler.Event", "executor.Call", "executor.Event", "TaskInfo", "Offer"]
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(st.sampled_from(ROOTS).flatmap(lambda root: st.tuples(st.just(root), messages(root))))
def test_encode_then_decode_is_identity(case: tuple[str, dict[str, Any]]) -> None:
    root, obj = case
    encoded = protobuf.encode(root, obj)
    decoded = protobuf.decode(root, encoded)
    assert decoded == obj
    assert protobuf.encode(root, decoded) == encoded
    assert protojson.strict_errors(obj, root) == []  # the generated objects are valid JSON-wire messages


# ---------------------------------------------------------------------------------------------------
# the reference runtime (google.protobuf), fed descriptors built from the same tables (no .proto files)


def _ident(name: str) -> str:
    return name.replace(".", "_")


def _camel(field: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field.split("_"))


@functools.cache
def reference_classes() -> dict[str, Any]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field_type = descriptor_pb2.FieldDescriptorProto
    kinds = ("string", "bytes", "bool", "double", *INTEGERS)
    scalars = {kind: getattr(field_type, f"TYPE_{kind.upper()}") for kind in kinds}
    labels = {"!": field_type.LABEL_REQUIRED, "*": field_type.LABEL_REPEATED, "": field_type.LABEL_OPTIONAL}

    def set_kind(field: Any, kind: str) -> None:
        if kind.startswith("enum:"):
            field.type, field.type_name = field_type.TYPE_ENUM, f".t.E_{_ident(kind[5:])}.V"
        elif kind in MESSAGES:
            field.type, field.type_name = field_type.TYPE_MESSAGE, f".t.{_ident(kind)}"
        else:
            field.type = scalars[kind]

    file = descriptor_pb2.FileDescriptorProto(name="mesos_gpu_tables.proto", package="t", syntax="proto2")
    for enum_name, values in ENUMS.items():  # each enum in its own message: value names repeat across enums
        enum = file.message_type.add(name=f"E_{_ident(enum_name)}").enum_type.add(name="V")
        for value_name, number in sorted(values.items(), key=lambda item: item[1] != 0):
            enum.value.add(name=value_name, number=number)
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=_ident(name))
        for key, spec in fields.items():
            kind, label, number = field_spec(spec)
            field = message.field.add(name=key, number=number, label=labels[label])
            if kind.startswith("map:"):
                entry = message.nested_type.add(name=f"{_camel(key)}Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, label=labels[""], type=field_type.TYPE_STRING)
                set_kind(entry.field.add(name="value", number=2, label=labels[""]), kind[4:])
                field.label, field.type = labels["*"], field_type.TYPE_MESSAGE
                field.type_name = f".t.{_ident(name)}.{entry.name}"
            else:
                set_kind(field, kind)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    by_name = pool.FindMessageTypeByName
    return {name: message_factory.GetMessageClass(by_name(f"t.{_ident(name)}")) for name in MESSAGES}


@SLOW
@given(st.sampled_from(ROOTS).flatmap(lambda root: st.tuples(st.just(root), messages(root, 2, 1))))
def test_reference_runtime_reads_and_rewrites_the_same_bytes(case: tuple[str, dict[str, Any]]) -> None:
    """Maps hold one entry here: the order of map entries on the wire is the writer's choice."""
    root, obj = case
    encoded = protobuf.encode(root, obj)
    reference = reference_classes()[root]()
    reference.ParseFromString(encoded)
    assert reference.IsInitialized()
    assert reference.SerializeToString(deterministic=True) == encoded
    assert protobuf.decode(root, reference.SerializeToString()) == obj


def test_reference_runtime_agrees_on_the_known_answers() -> None:
    call = reference_classes()["scheduler.Call"]()
    call.framework_id.value = "f"
    call.type = 8
    call.acknowledge.agent_id.value, call.acknowledge.task_id.value = "a", "t"
    call.acknowledge.uuid = bytes([0, 1, 2, 3])
    assert call.SerializeToString() == ACKNOWLEDGE_BYTES
