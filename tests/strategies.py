"""Hypothesis strategies shared by the project's tests: job documents (valid and invalid), specs, JSON.

- `job_documents()`: valid job JSON documents (single-task or distributed), as a user would submit: whole
  GPUs, GPU shares, elastic shares, gpu_memory, every isolation level that fits the members, uris.
- `single_task_documents()`, `distributed_job_documents()`: each kind alone.
- `job_specs()`: validated `JobSpec` values built from those documents.
- `invalid_job_documents()`: (document, JSON Pointer of one expected error) pairs: a valid document
  with one thing broken.
- `mutated_job_documents()`: a valid document with one value somewhere inside replaced by arbitrary JSON
  (may or may not stay valid): the fuzz input that reaches deep into the validator.
- `json_values()`: arbitrary JSON (what a client might send), `restart_policies()`: RestartPolicy values.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from mesos_gpu.core.model import JobSpec, RestartPolicy, RestartPolicyKind
from mesos_gpu.core.validation import validate_job

Doc = dict[str, Any]

dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_printable = st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f")
commands = st.text(_printable, min_size=1, max_size=40).filter(lambda text: text.strip() != "")
images = st.from_regex(r"[a-z0-9][a-z0-9./_-]{0,30}(:[a-z0-9._-]{1,10})?", fullmatch=True)
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name != "TF_CONFIG" and not name.startswith("MESOS_GPU_")
)
envs = st.dictionaries(env_names, st.text(_printable, max_size=20), max_size=3)
label_keys = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,10}[A-Za-z0-9])?", fullmatch=True)
labels = st.dictionaries(label_keys, st.text(_printable, max_size=20), max_size=3)


def _number(low: float, high: float) -> st.SearchStrategy[float | int]:
    """A JSON number in [low, high], written as an integer or a float."""
    whole = st.integers(int(low) if float(low).is_integer() else int(low) + 1, int(high))
    return st.one_of(whole, st.floats(low, high, allow_nan=False, allow_infinity=False))


cpus = _number(0.01, 1024)
mems = _number(32, 4_194_304)
disks = _number(0, 16_777_216)
whole_gpus = st.integers(0, 64)
shares = st.integers(1, 99).map(lambda n: n / 100)
elastic_shares = st.tuples(st.integers(1, 100), st.integers(1, 100)).map(
    lambda pair: {"min": min(pair) / 100, "max": 1 if max(pair) == 100 else max(pair) / 100}
)
gpus = st.one_of(whole_gpus, shares, elastic_shares)
gpu_memories = st.integers(1, 1_048_576)
SHARE_LEVELS = ("mig", "mps", "capped", "shared")
uri_values = st.one_of(
    st.from_regex(r"https?://[a-z0-9.-]{1,20}(:[0-9]{2,5})?/[A-Za-z0-9._/-]{0,30}", fullmatch=True),
    st.from_regex(r"/[A-Za-z0-9._/-]{1,30}", fullmatch=True),
)
output_files = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)  # a file name: no '/'


@st.composite
def uri_documents(draw: st.DrawFn) -> str | Doc:
    """One `uris` item: a URL string, or an object with any subset of the optional fields."""
    value = draw(uri_values)
    if draw(st.booleans()):
        return value
    out: Doc = {"value": value}
    for key, strategy in (("extract", st.booleans()), ("executable", st.booleans()),
                          ("output_file", st.one_of(st.none(), output_files))):
        if draw(st.booleans()):
            out[key] = draw(strategy)
    return out


count_texts = st.integers(1, 999_999).map(str)

constraints = st.one_of(
    st.tuples(st.just("hostname"), st.just("UNIQUE")).map(list),
    st.tuples(st.sampled_from(["rack", "zone"]), st.just("CLUSTER")).map(list),
    st.tuples(st.sampled_from(["rack", "zone"]), st.just("CLUSTER"), dns_labels).map(list),
    st.tuples(
        st.just("gpu_model"), st.sampled_from(["LIKE", "UNLIKE"]), st.sampled_from(["A100.*", "T4|V100", "."])
    ).map(list),
    st.tuples(st.just("rack"), st.just("GROUP_BY")).map(list),
    st.tuples(st.just("rack"), st.sampled_from(["GROUP_BY", "MAX_PER"]), count_texts).map(list),
)


@st.composite
def restart_documents(draw: st.DrawFn) -> Doc:
    """A valid `restart` object (any subset of its fields)."""
    out: Doc = {}
    if draw(st.booleans()):
        out["policy"] = draw(st.sampled_from([kind.value for kind in RestartPolicyKind]))
    if draw(st.booleans()):
        out["backoff_limit"] = draw(st.integers(0, 100))
    base = 10.0
    if draw(st.booleans()):
        base = draw(_number(0, 3600))
        out["backoff_seconds"] = base
    if draw(st.booleans()):
        out["max_backoff_seconds"] = draw(_number(base, 86_400))
    return out


@st.composite
def _common_fields(draw: st.DrawFn) -> Doc:
    out: Doc = {"name": draw(dns_labels)}
    optional = {
        "env": envs,
        "constraints": st.lists(constraints, max_size=3),
        "restart": restart_documents(),
        "deadline_seconds": st.one_of(st.none(), st.integers(1, 31_536_000)),
        "priority": st.integers(-1000, 1000),
        "tenant": dns_labels,
        "rendezvous_timeout_seconds": _number(1, 86_400),
        "labels": labels,
        "uris": st.lists(uri_documents(), max_size=3),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            out[key] = draw(strategy)
    return out


def _draw_resources(draw: st.DrawFn, into: Doc) -> None:
    """Some of cpus, mem, disk, gpus (whole, share or elastic) and, for a share, maybe gpu_memory."""
    for key, strategy in (("cpus", cpus), ("mem", mems), ("disk", disks), ("gpus", gpus)):
        if draw(st.booleans()):
            into[key] = draw(strategy)
    if _is_share(into.get("gpus", 0)) and draw(st.booleans()):
        into["gpu_memory"] = draw(gpu_memories)


def _is_share(value: Any) -> bool:
    return isinstance(value, dict) or 0 < value < 1


def _draw_isolation(draw: st.DrawFn, doc: Doc, members: list[Doc]) -> None:
    """An isolation level that fits the members (or none: the default); mig makes elastic shares fixed."""
    if not any(_is_share(m.get("gpus", 0)) for m in members):
        if draw(st.booleans()):
            doc["isolation"] = "exclusive"
        return
    level = draw(st.sampled_from([None, *SHARE_LEVELS]))
    if level is None:
        return
    doc["isolation"] = level
    if level == "mig":
        for member in members:
            if isinstance(member.get("gpus"), dict):
                member["gpus"] = member["gpus"]["min"] if member["gpus"]["min"] < 1 else 0.99


@st.composite
def single_task_documents(draw: st.DrawFn) -> Doc:
    """A valid single-task job (resources at the top level)."""
    out = draw(_common_fields())
    out["command"] = draw(commands)
    containerizer = draw(st.sampled_from([None, "mesos", "docker"]))
    if containerizer:
        out["containerizer"] = containerizer
    if containerizer == "docker" or draw(st.booleans()):
        out["image"] = draw(images)
    _draw_resources(draw, out)
    _draw_isolation(draw, out, [out])
    return out


@st.composite
def distributed_job_documents(draw: st.DrawFn) -> Doc:
    """A valid job with TF roles (a chief or a worker at least), overrides drawn at random."""
    out = draw(_common_fields())
    has_chief = draw(st.booleans())
    has_worker = draw(st.booleans()) if has_chief else True
    names = [n for n, present in (("chief", has_chief), ("worker", has_worker)) if present]
    names += [n for n in ("ps", "evaluator") if draw(st.booleans())]
    containerizer = draw(st.sampled_from([None, "mesos", "docker"]))
    if containerizer:
        out["containerizer"] = containerizer
    job_command = draw(st.booleans())
    job_image = draw(st.booleans())
    if job_command:
        out["command"] = draw(commands)
    if job_image:
        out["image"] = draw(images)
    roles: Doc = {}
    for name in names:
        role: Doc = {}
        if name in ("worker", "ps"):
            if draw(st.booleans()):
                role["instances"] = draw(st.integers(1, 4))
        elif draw(st.booleans()):
            role["instances"] = 1
        _draw_resources(draw, role)
        if not job_command or draw(st.booleans()):
            role["command"] = draw(commands)
        if (containerizer == "docker" and not job_image) or draw(st.booleans()):
            role["image"] = draw(images)
        if draw(st.booleans()):
            role["env"] = draw(envs)
        roles[name] = role
    out["roles"] = roles
    _draw_isolation(draw, out, list(roles.values()))
    policies = (["chief"] if has_chief else []) + (["worker0", "AllWorkers"] if has_worker else [])
    if draw(st.booleans()):
        out["success_policy"] = draw(st.sampled_from(policies))
    return out


def job_documents() -> st.SearchStrategy[Doc]:
    """A valid job document of either kind."""
    return st.one_of(single_task_documents(), distributed_job_documents())


def job_specs() -> st.SearchStrategy[JobSpec]:
    """A validated JobSpec."""
    return job_documents().map(validate_job)


def restart_policies() -> st.SearchStrategy[RestartPolicy]:
    """Any RestartPolicy a validated job can carry."""

    @st.composite
    def build(draw: st.DrawFn) -> RestartPolicy:
        base = draw(st.floats(0, 3600, allow_nan=False))
        return RestartPolicy(
            policy=draw(st.sampled_from(RestartPolicyKind)),
            backoff_limit=draw(st.integers(0, 100)),
            backoff_seconds=base,
            max_backoff_seconds=draw(st.floats(base, 86_400, allow_nan=False)),
        )

    return build()


json_scalars = st.one_of(
    st.none(),
    st.sampled_from([0.25, 0.5, 0.125, 1.0, 0.07, 1, 64]),  # near the edges of gpus
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values; objects favour the job's own field names so the validator goes deep."""
    keys = st.one_of(
        st.sampled_from(
            ["name", "command", "image", "roles", "worker", "chief", "ps", "evaluator", "cpus", "gpus", "mem",
             "instances", "env", "constraints", "restart", "policy", "success_policy", "containerizer",
             "isolation", "labels", "deadline_seconds", "priority", "tenant", "backoff_seconds",
             "gpu_memory", "min", "max", "uris", "value", "extract", "executable", "output_file"]
        ),
        st.text(max_size=8),
    )  # fmt: skip
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


# Each breaker takes a valid document and returns the JSON Pointer of the error it introduces.
def _unknown_field(doc: Doc) -> str:
    doc["bogus"] = 1
    return "/bogus"


def _bad_name(doc: Doc) -> str:
    doc["name"] = "Not_A_Label"
    return "/name"


def _bool_priority(doc: Doc) -> str:
    doc["priority"] = True
    return "/priority"


def _env_not_string(doc: Doc) -> str:
    doc["env"] = {"A": 1}
    return "/env/A"


def _bad_operator(doc: Doc) -> str:
    doc["constraints"] = [["hostname", "NEAR"]]
    return "/constraints/0/1"


def _bad_restart_policy(doc: Doc) -> str:
    doc["restart"] = {"policy": "Always"}
    return "/restart/policy"


def _too_fine_share(doc: Doc) -> str:
    if "roles" in doc:
        role = sorted(doc["roles"])[0]
        doc["roles"][role]["gpus"] = 0.125
        return f"/roles/{role}/gpus"
    doc["gpus"] = 0.125
    return "/gpus"


def _bad_isolation(doc: Doc) -> str:
    doc["isolation"] = "shared-capped"
    return "/isolation"


def _bad_uri(doc: Doc) -> str:
    doc["uris"] = ["https://example.com/a.tgz", "not a url"]
    return "/uris/1"


def _zero_cpus(doc: Doc) -> str:
    if "roles" in doc:
        role = sorted(doc["roles"])[0]
        doc["roles"][role]["cpus"] = 0
        return f"/roles/{role}/cpus"
    doc["cpus"] = 0
    return "/cpus"


_BREAKERS = [_unknown_field, _bad_name, _bool_priority, _env_not_string, _bad_operator, _bad_restart_policy,
             _too_fine_share, _zero_cpus, _bad_isolation, _bad_uri]  # fmt: skip


@st.composite
def invalid_job_documents(draw: st.DrawFn) -> tuple[Doc, str]:
    """(document, path): a valid document with one thing broken, and the path of the error it must raise."""
    doc = copy.deepcopy(draw(job_documents()))
    breaker = draw(st.sampled_from(_BREAKERS))
    return doc, breaker(doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out.append((*prefix, key))
        out.extend(_paths(item, (*prefix, key)))
    return out


@st.composite
def mutated_job_documents(draw: st.DrawFn) -> Doc:
    """A valid document with one inner value (or a new key) replaced by arbitrary JSON."""
    doc = copy.deepcopy(draw(job_documents()))
    paths = _paths(doc)
    replacement = draw(json_values(max_leaves=8))
    if draw(st.booleans()) or not paths:
        containers = [p for p in paths if isinstance(_get(doc, p), dict)]
        target = draw(st.sampled_from([(), *containers]))
        key = draw(st.sampled_from(["x", "name", "gpus", "instances", "command", "roles", "gpu_memory",
                                    "isolation", "uris", "min", "max"]))
        _get(doc, target)[key] = replacement
        return doc
    path = draw(st.sampled_from(paths))
    _get(doc, path[:-1])[path[-1]] = replacement
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc
