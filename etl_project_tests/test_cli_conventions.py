"""The command line's conventions: help everywhere, one way to name a district, --version, quiet pipes,
unknown districts named as unknown, and no third-party traceback on the terminal for an expected failure."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import socket
import subprocess
import sys
import threading

import pytest

from etl_project.cli.main import build_parser, main
from etl_project.registry import new_key

UNKNOWN = "unknown district 'nosuch': etl-project districts list shows the registered ones"


def walk(parser: argparse.ArgumentParser, path: str = "etl-project"):
    """(command path, parser, help shown in the parent's list) for every command and sub-command."""
    yield path, parser, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                for found in walk(sub, f"{path} {name}"):
                    yield found if found[1] is not sub else (found[0], sub, helps.get(name))


def test_every_command_and_option_has_help_text():
    missing = []
    for path, parser, listed_help in walk(build_parser()):
        if path != "etl-project" and not (listed_help and parser.description):
            missing.append(f"{path}: needs both a one-line help and a description")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if action.help is argparse.SUPPRESS:
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help text")
    assert missing == []


def test_every_district_is_named_with_the_same_option():
    named = []
    for path, parser, _ in walk(build_parser()):
        if path == "etl-project generate":
            continue  # there --district is only the id written into generated names and emails
        for action in parser._actions:
            if action.dest in ("district", "district_id") and action.help is not argparse.SUPPRESS:
                assert action.option_strings == ["--district"] and action.metavar == "ID", path
                named.append(path)
    assert {"etl-project sync", "etl-project plan", "etl-project districts test"} <= set(named)


def test_districts_actions_take_the_district_option_and_keep_the_positional_id(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ETL_PROJECT_HOME", str(tmp_path))
    for name in ("ETL_PROJECT_REGISTRY_URL", "ETL_PROJECT_DISTRICTS"):
        monkeypatch.delenv(name, raising=False)
    drops = tmp_path / "drops"
    drops.mkdir()
    assert main(["districts", "add", "--district", "lincoln", "--name", "L", "--local-path", str(drops)]) == 0
    assert main(["districts", "show", "--district", "lincoln", "--json"]) == 0
    assert main(["districts", "show", "lincoln", "--json"]) == 0
    shown = capsys.readouterr().out
    assert shown.count('"id": "lincoln"') == 2
    with pytest.raises(SystemExit) as exit_:
        main(["districts", "show", "lincoln", "--district", "other"])
    assert exit_.value.code == 2
    assert "names two districts" in capsys.readouterr().err


def console(*argv: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    cli = [sys.executable, "-m", "etl_project.cli.main", *argv]
    return subprocess.run(cli, capture_output=True, text=True, timeout=120, env=env, **kwargs)


def test_version():
    done = console("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"etl-project {importlib.metadata.version('etl_project')}"


def test_output_to_a_closed_pipe_ends_quietly(tmp_path):
    env = {**os.environ, "ETL_PROJECT_HOME": str(tmp_path)}
    cli = [sys.executable, "-m", "etl_project.cli.main", "districts", "new-key"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `| head -1` having read its line and gone: every write now fails
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) in (0, 141)
    assert stderr == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--district", "nosuch", "--date", "2026-11-27"],
        ["trace", "--district", "nosuch", "--entity", "users", "--id", "u1"],
        ["history", "--district", "nosuch"],
        ["report", "--district", "nosuch"],
    ],
)
def test_unknown_districts_are_named_as_unknown(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ETL_PROJECT_HOME", str(tmp_path))
    for name in ("ETL_PROJECT_REGISTRY_URL", "ETL_PROJECT_DISTRICTS", "LMS_URL", "ETL_PROJECT_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"etl-project {argv[0]}: {UNKNOWN}"


@pytest.fixture
def not_ssh_server():
    """A real TCP server that answers like a web server: no SSH banner."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_server_that_is_not_ssh_is_one_sentence_without_paramikos_traceback(tmp_path, not_ssh_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_PROJECT_")}
    env.update(ETL_PROJECT_HOME=str(tmp_path / "home"), ETL_PROJECT_SECRET_KEY=new_key())
    add = ["districts", "add", "--district", "x", "--name", "X", "--sftp-host", "127.0.0.1"]
    add += ["--sftp-port", str(not_ssh_server), "--sftp-user", "u", "--password-stdin"]
    assert console(*add, env=env, input="pw\n").returncode == 0
    done = console("districts", "test", "--district", "x", "--trust-host-key", "SHA256:x", env=env)
    assert done.returncode == 3
    assert "Cannot connect: 127.0.0.1" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and "Exception (client)" not in done.stderr, done.stderr
