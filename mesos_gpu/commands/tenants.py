"""`mesos-gpu tenants`: each tenant's GPU quota, limit, borrowing, weight, GPUs used and borrowed, and jobs
waiting, as a table (or JSON), then the GPU profile in force with the terms it overrides (marked `*`);
`tenants set --file F` replaces the tenants document (stored in ZooKeeper, in force from the scheduler's
next offer cycle); `tenants reset` forgets it (the scheduler's tenants file applies again, or no quotas)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mesos_gpu.client import ClientError
from mesos_gpu.commands.cluster import profile_text
from mesos_gpu.commands.common import (
    add_output_option,
    api_options,
    client_from,
    output_format,
    print_json,
    reports_errors,
    table,
)

PATH = "/v1/tenants"
ACTIONS = ("show", "set", "reset")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tenants", parents=[api_options()], help="show or set the tenants' GPU quotas",
        description="Show every tenant: its guaranteed GPUs (quota), limit, whether it may borrow idle "
        "quota of others, its weight in fair sharing, the GPUs it uses and borrows, and its jobs waiting; "
        "then the GPU profile in force, the next switch, and the tenants' terms the profile overrides "
        "(their rows marked *). "
        "`set --file F` replaces the tenants document (validated, stored in ZooKeeper, in force from the "
        "next offer cycle; docs/tenancy.md); `reset` forgets it (the scheduler's MESOS_GPU_TENANTS_FILE "
        "applies again, or no quotas).",
    )
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="show",
                        help="show (the default), set or reset")
    parser.add_argument("--file", "-f", metavar="F", help="set: the tenants document (JSON; '-': stdin)")
    add_output_option(parser)
    parser.set_defaults(func=tenants_command)


@reports_errors
def tenants_command(args: argparse.Namespace) -> int:
    if args.action == "set":
        return set_tenants(args)
    if args.file is not None:
        raise ClientError(f"--file is for `tenants set`, not `tenants {args.action}`")
    return reset_tenants(args) if args.action == "reset" else show_tenants(args)


def show_tenants(args: argparse.Namespace) -> int:
    _, _, body = client_from(args).request("GET", PATH)
    return _print(args, body)


def set_tenants(args: argparse.Namespace) -> int:
    if args.file is None:
        raise ClientError("tenants set needs --file F (a JSON tenants document; '-': stdin)")
    try:
        if args.file == "-":
            document = json.loads(sys.stdin.read())
        else:
            with open(args.file, encoding="utf-8") as handle:
                document = json.load(handle)
    except OSError as exc:
        raise ClientError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ClientError(f"{args.file} is not JSON: {exc}") from None
    _, _, body = client_from(args).request("PUT", PATH, document)
    return _print(args, body)


def reset_tenants(args: argparse.Namespace) -> int:
    _, _, body = client_from(args).request("DELETE", PATH)
    return _print(args, body)


def _gpus(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _print(args: argparse.Namespace, body: dict[str, Any]) -> int:
    kind = output_format(args)
    if kind == "json":
        print_json(body)
        return 0
    if kind == "name":
        for tenant in body.get("tenants", ()):
            print(tenant["name"])
        return 0
    print(tenants_text(body))
    return 0


def tenants_text(body: dict[str, Any]) -> str:
    """The tenants as a table, then where the terms come from."""
    rows = [
        (
            tenant["name"] + ("" if tenant.get("listed", True) or not body.get("quotas") else " (default)")
            + (" *" if tenant.get("profile_terms") else ""),
            _gpus(tenant.get("quota")),
            _gpus(tenant.get("limit")) if body.get("quotas") else "-",
            ("yes" if tenant.get("may_borrow") else "no") if body.get("quotas") else "-",
            _gpus(tenant.get("weight")) if body.get("quotas") else "-",
            _gpus(tenant.get("used_gpus")),
            _gpus(tenant.get("borrowed_gpus")),
            f"{tenant.get('waiting_jobs', 0)} ({_gpus(tenant.get('waiting_gpus'))} GPUs)",
        )
        for tenant in body.get("tenants", ())
    ]
    header = ("TENANT", "QUOTA", "LIMIT", "BORROWS", "WEIGHT", "USED", "BORROWED", "WAITING")
    lines = [table(header, rows) if rows else "No tenant has jobs or a quota."]
    source = body.get("source")
    if not body.get("quotas"):
        lines.append("\nNo quotas apply: every job is placed as resources allow "
                     "(set them with `mesos-gpu tenants set --file F`, docs/tenancy.md).")
    elif source == "store":
        lines.append(f"\nQuotas set through the API (version {body.get('version')}), kept in ZooKeeper; "
                     f"{_gpus(body.get('unassigned_gpus'))} unassigned GPU(s) borrowable.")
    else:
        lines.append(f"\nQuotas from the file {body.get('file')}; "
                     f"{_gpus(body.get('unassigned_gpus'))} unassigned GPU(s) borrowable.")
    profile = body.get("profile")
    if profile:
        lines.append(profile_text(profile))
        lines.append(overrides_text(profile.get("tenants") or {}, profile.get("current")))
    return "\n".join(lines)


def overrides_text(overrides: dict[str, Any], current: str | None) -> str:
    """The tenants' terms the profile in force overrides (`GET /v1/tenants`' `profile.tenants`)."""
    if current is None:
        return "No profile in force: every tenant has its own terms."
    if not overrides:
        return f"Profile {current} overrides no tenant's terms."
    parts = [f"{name} (quota {_gpus(terms.get('quota'))}, limit {_gpus(terms.get('limit'))}, "
             f"borrows {'yes' if terms.get('may_borrow') else 'no'})"
             for name, terms in sorted(overrides.items())]
    return f"Terms of profile {current} in force (*): " + "; ".join(parts) + "."
