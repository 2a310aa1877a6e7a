"""`--api` and `--token` before the subcommand (`mesos-gpu --api URL jobs`, as the DC/OS package's
notes write it): the top-level value reaches every API command, the subcommand's own wins when both are
given, the defaults stay, and a non-API command refuses them."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from mesos_gpu import cli
from mesos_gpu.client import DEFAULT_API, ENV_API, ENV_TOKEN

# The smallest command line of each API command; the set must be exactly the parser's API commands.
API_COMMANDS = {
    "submit": ["submit", "job.json"],
    "jobs": ["jobs"],
    "status": ["status", "j1"],
    "kill": ["kill", "j1"],
    "logs": ["logs", "j1"],
    "run": ["run", "--", "python", "train.py"],
    "cluster": ["cluster"],
    "wait": ["wait", "j1"],
    "tenants": ["tenants"],
}


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API, raising=False)
    monkeypatch.delenv(ENV_TOKEN, raising=False)


def parse(argv: list[str]) -> tuple[str, str | None]:
    args = cli.build_parser().parse_args(argv)
    assert not hasattr(args, "global_api") and not hasattr(args, "global_token")
    return args.api, args.token


def test_the_api_commands_are_the_ones_listed_here() -> None:
    assert set(cli.build_parser().api_commands) == set(API_COMMANDS)


@pytest.mark.parametrize("command", sorted(API_COMMANDS))
@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([], [], (DEFAULT_API, None)),
        (["--api", "http://a:1"], [], ("http://a:1", None)),
        ([], ["--api", "http://b:2"], ("http://b:2", None)),
        (["--api", "http://a:1"], ["--api", "http://b:2"], ("http://b:2", None)),  # the command's own wins
        (["--token", "t1"], [], (DEFAULT_API, "t1")),
        (["--token", "t1"], ["--token", "t2"], (DEFAULT_API, "t2")),
        (["--api", "http://a:1", "--token", "t1"], ["--api", DEFAULT_API], (DEFAULT_API, "t1")),
    ],
)
def test_top_level_and_command_options(command, before, after, expected) -> None:
    argv = API_COMMANDS[command]
    if "--" in argv:  # options go before run's `--`
        cut = argv.index("--")
        full = [*before, *argv[:cut], *after, *argv[cut:]]
    else:
        full = [*before, *argv, *after]
    assert parse(full) == expected


def test_the_environment_is_still_the_default_and_the_option_beats_it(monkeypatch) -> None:
    monkeypatch.setenv(ENV_API, "http://env:3")
    monkeypatch.setenv(ENV_TOKEN, "env-token")
    assert parse(["jobs"]) == ("http://env:3", "env-token")
    assert parse(["--api", "http://a:1", "--token", "t1", "jobs"]) == ("http://a:1", "t1")


@pytest.mark.parametrize("argv", [["--api", "http://a:1", "scheduler"], ["--token", "t", "local", "up"]])
def test_a_command_that_talks_to_no_api_refuses_them(argv, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "is an option of the API commands (submit, jobs" in capsys.readouterr().err


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"jobs": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_post_install_notes_command_reaches_the_api_with_the_token(api, capsys) -> None:
    assert cli.main(["--api", api, "--token", "s3cret", "jobs", "--json"]) == 0
    assert Recorder.seen and all(auth == "Bearer s3cret" for _, auth in Recorder.seen)
    assert Recorder.seen[0][0].startswith("/v1/jobs")
    capsys.readouterr()
