"""The limits of a job document (pure): its field names, the numeric ranges and sizes, the reserved
environment names and the shapes of names, labels and images. `validation` enforces them; the published
schema (`JOB_SCHEMA_PATH` inside the `mesos_gpu` package) states them too, and a test keeps the two in
step. Every string of a document, keys included, must be valid Unicode text (`unicode_problem`): JSON's
"\\ud800" escape decodes to a lone surrogate, which UTF-8 (and so the store) cannot encode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mesos_gpu.core.model import ConstraintOperator, Role

JOB_SCHEMA_PATH = "schemas/job.schema.json"
"""The job schema's path inside the mesos_gpu package (package data)."""

JOB_FIELDS = (
    "name", "image", "containerizer", "command", "roles", "cpus", "mem", "disk", "gpus", "gpu_memory", "env",
    "constraints", "restart", "success_policy", "deadline_seconds", "priority", "tenant",
    "rendezvous_timeout_seconds", "isolation", "labels", "uris", "secrets", "volumes",
)  # fmt: skip
ROLE_FIELDS = ("instances", "cpus", "mem", "disk", "gpus", "gpu_memory", "command", "image", "env")
RESTART_FIELDS = ("policy", "backoff_limit", "backoff_seconds", "max_backoff_seconds")
RESOURCE_FIELDS = ("cpus", "mem", "disk", "gpus", "gpu_memory")
ELASTIC_FIELDS = ("min", "max")
URI_FIELDS = ("value", "extract", "executable", "output_file", "cache")

# (low, high, whole number?) for each numeric field.
CPUS_RANGE = (0.01, 1024, False)
MEM_RANGE = (32, 4_194_304, False)  # MB: 32 MB to 4 TiB
DISK_RANGE = (0, 16_777_216, False)  # MB: up to 16 TiB
GPUS_RANGE = (0, 64, True)  # whole GPUs; a share is a multiple of SHARE_STEP below 1
GPU_MEMORY_RANGE = (1, 1_048_576, True)  # MB of GPU memory for a share: up to 1 TiB
INSTANCES_RANGE = (1, 1000, True)
BACKOFF_LIMIT_RANGE = (0, 100, True)
BACKOFF_SECONDS_RANGE = (0, 3600, False)
MAX_BACKOFF_SECONDS_RANGE = (0, 86_400, False)
DEADLINE_SECONDS_RANGE = (1, 31_536_000, True)  # up to a year
PRIORITY_RANGE = (-1000, 1000, True)
RENDEZVOUS_TIMEOUT_RANGE = (1, 86_400, False)

MAX_TASKS_PER_JOB = 1000
MAX_NAME_LENGTH = 63
MAX_COMMAND_LENGTH = 65_536
MAX_IMAGE_LENGTH = 512
MAX_ENV_ENTRIES = 256
MAX_ENV_NAME_LENGTH = 256
MAX_ENV_VALUE_LENGTH = 32_768
MAX_LABELS = 64
MAX_LABEL_VALUE_LENGTH = 256
MAX_CONSTRAINTS = 64
MAX_CONSTRAINT_FIELD_LENGTH = 255
MAX_CONSTRAINT_VALUE_LENGTH = 1024
MAX_URIS = 64
MAX_URI_LENGTH = 4096
MAX_OUTPUT_FILE_LENGTH = 255
SHARES_PER_GPU = 100  # a share is a whole number of hundredths of a GPU ("0.25")
RESERVED_ENV = frozenset({"TF_CONFIG"})
RESERVED_ENV_PREFIX = "MESOS_GPU_"

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?")
IMAGE = re.compile(r"\S+")
POSITIVE_INTEGER_TEXT = re.compile(r"[1-9][0-9]{0,5}")
# What every fetcher here fetches (the local agent's and the share host's): http(s), file:/// URLs and
# absolute agent paths; schemes are case-insensitive (RFC 3986), as urllib reads them.
URI = re.compile(r"([Hh][Tt][Tt][Pp][Ss]?://|[Ff][Ii][Ll][Ee]:///|/)\S*")
ANY_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://\S*")  # a URL of some other scheme
OUTPUT_FILE = re.compile(r"[^/\x00]+")  # a file name in the sandbox (the fetchers take no '/') ...
NOT_OUTPUT_FILES = (".", "..")  # ... and neither of these

SINGLE_INSTANCE_ROLES = {Role.CHIEF: "a job has one chief", Role.EVALUATOR: "a job has one evaluator"}
VALUE_FORBIDDEN = {ConstraintOperator.UNIQUE}
VALUE_REQUIRED = {ConstraintOperator.LIKE, ConstraintOperator.UNLIKE, ConstraintOperator.MAX_PER}
VALUE_COUNT = {ConstraintOperator.GROUP_BY, ConstraintOperator.MAX_PER}

DNS_LABEL_MESSAGE = (
    "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
)
COMMAND_MESSAGE = f"must be a non-empty string of at most {MAX_COMMAND_LENGTH} characters, without NUL"
IMAGE_MESSAGE = f"must be an image reference: 1 to {MAX_IMAGE_LENGTH} characters, no spaces"
CONSTRAINT_FIELD_MESSAGE = (
    f'must be an attribute name (or "hostname"): 1 to {MAX_CONSTRAINT_FIELD_LENGTH} characters'
)
CONSTRAINT_SHAPE_MESSAGE = "must be [field, operator] or [field, operator, value]"
GPUS_MESSAGE = (
    'must be a whole number of GPUs from 0 to 64, a GPU share below 1 (a multiple of 0.01, e.g. 0.25) '
    'or an elastic share {"min": m, "max": M}'
)
SHARE_STEP_MESSAGE = "a GPU share must be a multiple of 0.01 (e.g. 0.25)"
ELASTIC_BOUND_MESSAGE = "must be a multiple of 0.01 above 0 and at most 1"
ELASTIC_ORDER_MESSAGE = "must be at most max"
GPU_MEMORY_SHARES_ONLY = (
    'only for a GPU share (gpus below 1 or {"min", "max"}); whole GPUs come with all their memory'
)
ISOLATION_MESSAGE = 'must be one of "exclusive", "mig", "mps", "capped", "shared"'
EXCLUSIVE_SHARE_MESSAGE = (
    'a GPU share needs a share isolation level ("mig", "mps", "capped" or "shared"); '
    'the job\'s isolation is "exclusive"'
)
SHARE_LEVEL_MESSAGE = (
    '"{level}" is an isolation level of GPU shares, and no member asks for a share '
    '(gpus below 1 or {{"min", "max"}}); leave it out or use "exclusive"'
)
MIG_ELASTIC_MESSAGE = (
    'MIG shares have fixed sizes (the MIG profiles\'): give one number, not {"min", "max"}'
)
URIS_MESSAGE = f"must be a list of at most {MAX_URIS} URIs"
URI_MESSAGE = (
    f'must be an http://, https:// or file:/// URL ("https://host/file.tar.gz") or an absolute path on the '
    f"agent: 1 to {MAX_URI_LENGTH} characters, no spaces"
)
URI_SCHEME_MESSAGE = (
    '"{scheme}://" URLs are not fetched here: use an http://, https:// or file:/// URL or an absolute path '
    "on the agent"
)
URI_ITEM_MESSAGE = (
    'must be a URI string or an object {"value", "extract", "executable", "output_file", "cache"}'
)
OUTPUT_FILE_MESSAGE = (
    f"must be a file name in the sandbox: 1 to {MAX_OUTPUT_FILE_LENGTH} characters, no '/', not '.' or "
    "'..', no NUL"
)
OPERATORS_TEXT = ", ".join(op.value for op in ConstraintOperator)
TEXT_MESSAGE = "must be valid Unicode text ({problem})"
KEY_SHOWN_LENGTH = 60


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be encoded as UTF-8, or None when it can. Only a surrogate code point (U+D800
    to U+DFFF, left lone by a JSON "\\ud800" escape without its pair) cannot: "a lone surrogate
    \\ud800 at character 5" names the first one (characters counted from 0)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate \\u{ord(text[exc.start]):04x} at character {exc.start}"
    return None


def unicode_problems(document: object) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, message) of every string of a parsed JSON document that is not valid Unicode text, object
    keys included, in document order (iterative: any depth). A bad key is reported at its object's
    path, shown escaped in the message (`key "A\\ud800" must be ...`), and what it holds is skipped:
    no path or message yielded holds a character that UTF-8 cannot encode."""
    stack: list[tuple[tuple[str | int, ...], object]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = unicode_problem(value)
            if problem is not None:
                yield path, TEXT_MESSAGE.format(problem=problem)
        elif isinstance(value, dict):
            members: list[tuple[tuple[str | int, ...], object]] = []
            for key, item in value.items():
                problem = unicode_problem(key) if isinstance(key, str) else None
                if problem is None:
                    members.append(((*path, key), item))
                    continue
                shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
                if len(shown) > KEY_SHOWN_LENGTH:
                    shown = shown[:KEY_SHOWN_LENGTH] + "..."
                yield path, f'key "{shown}" ' + TEXT_MESSAGE.format(problem=problem)
            stack.extend(reversed(members))
        elif isinstance(value, list | tuple):
            stack.extend(reversed([((*path, index), item) for index, item in enumerate(value)]))
