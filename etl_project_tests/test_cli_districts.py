"""``etl-project districts ...`` end to end: the registry, encrypted credentials and ``districts test``
against a real SFTP server (asyncssh in-process), through ``main([...])`` and the installed console script."""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from etl_project.cli.main import main
from etl_project.generate import generate_drop
from etl_project.registry import Registry, new_key
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD, SFTP_USER, SftpTestServer

CONSOLE = shutil.which("etl-project", path=os.path.dirname(sys.executable))


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("ETL_PROJECT_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    for name in ("ETL_PROJECT_REGISTRY_URL", "ETL_PROJECT_SECRET_KEY_PREVIOUS", "ETL_PROJECT_ARCHIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ETL_PROJECT_WAREHOUSE", raising=False)
    return home


def run(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def add_sftp(
    capsys, monkeypatch, server: SftpTestServer, password: str = SFTP_PASSWORD, did: str = "lincoln"
):
    return run(
        capsys,
        monkeypatch,
        *("districts", "add", did, "--name", "Lincoln Public Schools", "--timezone", "America/Chicago"),
        *("--sftp-host", server.host, "--sftp-port", str(server.port), "--sftp-user", SFTP_USER),
        *("--remote-dir", "/outbox", "--password-stdin"),
        stdin=password + "\n",
    )


def fingerprint(server: SftpTestServer) -> str:
    import asyncssh

    return asyncssh.import_public_key(server.host_key_openssh).get_fingerprint("sha256")


def test_add_list_show_disable_enable_remove(home, capsys, monkeypatch, sftp_server):
    code, out = add_sftp(capsys, monkeypatch, sftp_server)
    assert code == 0, out
    assert "Registered lincoln" in out and "password stored encrypted" in out
    code, out = run(
        capsys, monkeypatch, "districts", "add", "demo", "--name", "Demo", "--local-path", "drops"
    )
    assert code == 0, out

    code, out = run(capsys, monkeypatch, "districts", "list")
    lines = out.splitlines()
    assert lines[0].startswith("demo") and "local folder" in lines[0]
    assert lines[1].startswith("lincoln") and "host key not pinned yet" in lines[1]

    code, out = run(capsys, monkeypatch, "districts", "show", "lincoln")
    assert code == 0
    assert f"password      set ({len(SFTP_PASSWORD)} characters)" in out
    assert "America/Chicago" in out and "not pinned yet" in out

    assert run(capsys, monkeypatch, "districts", "disable", "lincoln")[0] == 0
    assert Registry().get("lincoln").enabled is False
    code, out = run(capsys, monkeypatch, "districts", "list", "--json")
    assert {d["id"]: d["enabled"] for d in json.loads(out)} == {"demo": True, "lincoln": False}
    assert run(capsys, monkeypatch, "districts", "enable", "lincoln")[0] == 0
    assert Registry().get("lincoln").enabled is True

    code, out = run(capsys, monkeypatch, "districts", "remove", "lincoln")
    assert code == 2 and "without --yes" in out
    assert "lincoln" in Registry().all()
    warehouse = home / "warehouse" / "lincoln.duckdb"
    warehouse.parent.mkdir(parents=True)
    warehouse.write_bytes(b"")
    code, out = run(capsys, monkeypatch, "districts", "remove", "lincoln", "--yes")
    assert code == 0, out
    assert "warehouse: removed 1 file(s)" in out and "archive: kept" in out
    assert not warehouse.exists() and set(Registry().all()) == {"demo"}
    code, out = run(capsys, monkeypatch, "districts", "show", "lincoln")
    assert code == 2 and "not registered" in out
    assert SFTP_PASSWORD not in out


def test_secret_key_missing_is_explained(home, capsys, monkeypatch, sftp_server):
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY")
    code, out = add_sftp(capsys, monkeypatch, sftp_server)
    assert code == 2
    assert "ETL_PROJECT_SECRET_KEY is not set" in out and "etl-project districts new-key" in out
    assert SFTP_PASSWORD not in out
    # a local-folder district needs no key at all
    assert run(capsys, monkeypatch, "districts", "add", "demo", "--name", "Demo", "--local-path", "d")[0] == 0


def test_rotate_key_command(home, capsys, monkeypatch, sftp_server):
    assert add_sftp(capsys, monkeypatch, sftp_server)[0] == 0
    old = os.environ["ETL_PROJECT_SECRET_KEY"]
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    code, out = run(capsys, monkeypatch, "districts", "rotate-key")
    assert code == 2 and "ETL_PROJECT_SECRET_KEY_PREVIOUS" in out  # old key not given: nothing changes
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY_PREVIOUS", old)
    code, out = run(capsys, monkeypatch, "districts", "rotate-key")
    assert code == 0 and "1 district(s)" in out
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY_PREVIOUS")
    code, out = run(capsys, monkeypatch, "districts", "show", "lincoln")
    assert f"set ({len(SFTP_PASSWORD)} characters)" in out


def test_console_script_reads_the_password_from_stdin(home, tmp_path):
    assert CONSOLE, "the etl-project console script is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if k != "ETL_PROJECT_SECRET_KEY_PREVIOUS"}
    password = "stdin-only-p4ss-e21d"
    add = [CONSOLE, "districts", "add", "cs", "--name", "Console", "--sftp-host", "sftp.example"]
    add += ["--sftp-user", "etl", "--remote-dir", "/outbox", "--password-stdin"]
    done = subprocess.run(add, input=password + "\n", capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    show = subprocess.run([CONSOLE, "districts", "show", "cs"], capture_output=True, text=True, env=env)
    assert f"password      set ({len(password)} characters)" in show.stdout
    assert password not in show.stdout + show.stderr
    assert password.encode() not in (home / "registry.sqlite").read_bytes()
    assert Registry().credentials("cs").password == password  # exactly the line, without its newline


def _drops(server: SftpTestServer) -> None:
    outbox = Path(server.root) / "outbox"
    generate_drop(outbox / "2026-11-27", 20, day=1, seed=5)
    generate_drop(outbox / "2026-11-28", 20, day=2, seed=5, with_errors=2)


def test_districts_test_pins_after_confirmation_then_connects(home, capsys, monkeypatch, sftp_server):
    _drops(sftp_server)
    assert add_sftp(capsys, monkeypatch, sftp_server)[0] == 0
    fp = fingerprint(sftp_server)

    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln")  # not a terminal, no --trust
    assert code == 3
    assert fp in out and "Not pinned" in out
    assert Registry().get("lincoln").source.host_key == ""  # never pinned silently

    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", "SHA256:wrong")
    assert code == 3 and "does not match" in out
    assert Registry().get("lincoln").source.host_key == ""

    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", fp)
    assert code == 1, out  # the newest drop has two bad rows
    assert "Host key: pinned." in out and "Login: OK" in out
    assert "2 complete drop(s)" in out and "2026-11-27" in out
    assert "Newest drop: /outbox/2026-11-28" in out
    assert "Result: PROBLEMS" in out and "rejected rows or files" in out
    assert Registry().get("lincoln").source.host_key == sftp_server.host_key_openssh

    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln")  # second run: the pin is used
    assert code == 1 and f"pinned {fp} (ssh-ed25519)" in out and "Login: OK" in out
    code, out = run(capsys, monkeypatch, "districts", "show", "lincoln")
    assert f"host key      {fp} (ssh-ed25519), pinned" in out
    assert SFTP_PASSWORD not in out


def test_changed_host_key_is_refused_loudly(home, capsys, monkeypatch, sftp_server, sftp_client_key):
    _drops(sftp_server)
    assert add_sftp(capsys, monkeypatch, sftp_server)[0] == 0
    first = fingerprint(sftp_server)
    assert run(capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", first)[0] == 1
    users = {SFTP_USER: SFTP_PASSWORD}
    with SftpTestServer(sftp_server.root, users, {SFTP_USER: [sftp_client_key.public_openssh]}) as imposter:
        code, out = run(
            capsys, monkeypatch, "districts", "update", "lincoln", "--sftp-port", str(imposter.port)
        )
        assert code == 0, out
        code, out = run(
            capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", fingerprint(imposter)
        )
    assert code == 3
    assert "HOST KEY CHANGED" in out and first in out and fingerprint(imposter) in out
    assert "no credentials were sent" in out and "--forget-host-key" in out
    assert "Login: OK" not in out
    assert Registry().get("lincoln").source.host_key == sftp_server.host_key_openssh  # pin unchanged
    assert SFTP_PASSWORD not in out


def test_wrong_password_and_no_drop(home, capsys, monkeypatch, sftp_server, caplog):
    wrong = "not-the-password-5c2e"
    assert add_sftp(capsys, monkeypatch, sftp_server, password=wrong)[0] == 0
    fp = fingerprint(sftp_server)
    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", fp)
    assert code == 3 and "Login FAILED" in out and "refused the password" in out
    assert wrong not in out + caplog.text

    code, out = run(
        capsys, monkeypatch, "districts", "update", "lincoln", "--password-stdin", stdin=SFTP_PASSWORD
    )
    assert code == 0 and "credentials replaced (password)" in out
    code, out = run(capsys, monkeypatch, "districts", "test", "lincoln")
    assert code == 4 and "Login: OK" in out and "No complete drop yet" in out
    assert SFTP_PASSWORD not in out + caplog.text


def test_local_district_test_and_import(home, capsys, monkeypatch, tmp_path):
    drops = tmp_path / "dropbox"
    generate_drop(drops / "2026-11-28", 20, seed=1)
    toml = tmp_path / "districts.toml"
    toml.write_text(
        f'[districts.demo]\nname = "Demo"\n[districts.demo.source]\nkind = "local"\npath = "{drops}"\n'
    )
    code, out = run(capsys, monkeypatch, "districts", "import", str(toml))
    assert code == 0 and "imported demo" in out
    code, out = run(capsys, monkeypatch, "districts", "test", "demo")
    assert code == 0, out
    assert "Newest drop" in out and "Result: OK" in out and "Setup OK" in out


def _pty_run(cmd: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run ``cmd`` on a pseudo-terminal (so it is interactive) and answer its confirmation prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out, answered = b"", False
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the command finished and closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"Type yes" in out:
                os.write(master, answer)
                answered = True
    finally:
        os.close(master)
        code = proc.wait(timeout=120)
    return code, out.decode(errors="replace")


def test_interactive_confirmation_through_the_console_script(home, capsys, monkeypatch, sftp_server):
    _drops(sftp_server)
    assert add_sftp(capsys, monkeypatch, sftp_server)[0] == 0
    env = dict(os.environ)
    code, out = _pty_run([CONSOLE, "districts", "test", "lincoln"], env, b"no\n")
    assert code == 3 and fingerprint(sftp_server) in out and "Not pinned" in out
    assert Registry().get("lincoln").source.host_key == ""
    code, out = _pty_run([CONSOLE, "districts", "test", "lincoln"], env, b"yes\n")
    assert code == 1, out
    assert "Host key: pinned." in out and "Newest drop: /outbox/2026-11-28" in out
    assert Registry().get("lincoln").source.host_key == sftp_server.host_key_openssh
    assert SFTP_PASSWORD not in out


def test_demo_needs_no_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT", "DAGSTER_HOME"))}
    env["ETL_PROJECT_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [CONSOLE, "demo", "--students", "30"], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "registry" in done.stdout
    listing = subprocess.run([CONSOLE, "districts", "list"], capture_output=True, text=True, env=env)
    assert listing.stdout.startswith("demo") and "local folder" in listing.stdout


def test_rest_district_is_stored_with_its_secret_encrypted(home, capsys, monkeypatch):
    secret = "rest-client-secret-0a9b8c"
    code, out = run(
        capsys,
        monkeypatch,
        *(
            "districts",
            "add",
            "metro",
            "--name",
            "Metro",
            "--rest-url",
            "https://sis.example/ims/oneroster/v1p2/",
        ),
        *("--client-id", "etl-client", "--client-secret-stdin", "--oauth", "2"),
        *("--token-url", "https://sis.example/oauth/token"),
        stdin=secret,
    )
    assert code == 0, out
    code, out = run(capsys, monkeypatch, "districts", "show", "metro")
    assert "REST https://sis.example/ims/oneroster/v1p2" in out and "etl-client" in out
    assert f"client secret set ({len(secret)} characters)" in out
    assert secret not in out
    assert secret.encode() not in (home / "registry.sqlite").read_bytes()
    assert Registry().secrets("metro") == {"client_secret": secret}
    source = Registry().get("metro").source
    assert (source.kind, source.client_id, source.auth, source.version) == (
        "rest",
        "etl-client",
        "oauth2",
        "1.2",
    )
    assert source.oauth1_signature_method is None  # OAuth 1.0a would sign with HMAC-SHA256
    credentials = Registry().credentials("metro")
    assert (credentials.client_id, credentials.client_secret) == ("etl-client", secret)
    assert secret not in repr(credentials)


def test_rest_oauth1_district_keeps_its_signature_method(home, capsys, monkeypatch):
    rest = ("--rest-url", "https://sis.example/ims/oneroster/v1p1", "--oneroster-version", "1.1")
    oauth1 = ("--client-id", "etl-client", "--client-secret-stdin", "--oauth", "1")
    code, out = run(
        capsys,
        monkeypatch,
        *("districts", "add", "metro", "--name", "Metro", *rest, *oauth1),
        *("--oauth1-signature-method", "HMAC-SHA1"),
        stdin="a-secret-value",
    )
    assert code == 0, out
    source = Registry().get("metro").source
    assert (source.auth, source.oauth1_signature_method) == ("oauth1", "HMAC-SHA1")
