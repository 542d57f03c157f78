"""``etl-project portal``: the district portal (docs/portal.md) under uvicorn, with the report server's
limits."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from etl_project.cli.errors import CommandError

SECRET_KEY_FILE = "secret.key"
DAGSTER_URL_ENV = "ETL_PROJECT_DAGSTER_URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "portal",
        help="serve the district portal (sign-in, districts' health, invitations)",
        description="Serves the district portal on HOST:PORT (127.0.0.1 by default; publish it through a TLS "
        "reverse proxy, see docs/portal.md). Accounts live in the registry (ETL_PROJECT_REGISTRY_URL, else "
        "$ETL_PROJECT_HOME/registry.sqlite); TOTP secrets are encrypted with ETL_PROJECT_SECRET_KEY. With no "
        "operator yet, prints a one-time link to set the first operator's password.",
    )
    parser.add_argument("--port", type=int, default=8780, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--max-connections", type=int, default=4096, help="open connections served at once (more get 503)"
    )
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds a client has to send a request's headers"
    )
    parser.add_argument(
        "--dagster-url",
        default=None,
        help="an existing Dagster webserver for Sync now (production; also ETL_PROJECT_DAGSTER_URL; 'off' "
        "turns Sync now off). Unset on the embedded default: the portal runs dagster-daemon and "
        "dagster-webserver beside itself on loopback and stops them when it stops",
    )
    parser.set_defaults(func=run)


def _embedded_secret_key(settings) -> None:
    """On the embedded default (no ETL_PROJECT_REGISTRY_URL) with no ETL_PROJECT_SECRET_KEY: the key in
    $ETL_PROJECT_HOME/secret.key (0600), created once; exported so the Dagster children use it too."""
    from etl_project.registry import new_key
    from etl_project.registry.crypto import SECRET_KEY_ENV

    if os.environ.get(SECRET_KEY_ENV) or settings.registry_url_is_set:
        return
    path = Path(settings.home) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key())
        print(f"Created the embedded secret key {path} (mode 0600); production sets {SECRET_KEY_ENV}.")
    os.environ[SECRET_KEY_ENV] = path.read_text().strip()


def _start_sync_service(args: argparse.Namespace, backends, settings):
    """The webserver Sync now submits to: the given one, none ('off'), or children started here."""
    from etl_project.portal.dagster_children import start_dagster

    given = args.dagster_url or os.environ.get(DAGSTER_URL_ENV)
    if given:
        backends.dagster_url = None if given == "off" else given.rstrip("/")
        if backends.dagster_url:
            backends.ready.set()
        return None
    children = start_dagster(Path(settings.home) / "logs")
    backends.dagster_url = children.url
    print(f"Starting dagster-daemon and dagster-webserver for Sync now (logs in {children.logs}).")
    return children


def run(args: argparse.Namespace) -> int:
    from etl_project.instance import ensure_dagster_home
    from etl_project.portal.app import build_portal, create_app
    from etl_project.portal.backends import Backends
    from etl_project.portal.bootstrap import first_operator_link
    from etl_project.portal.config import PortalConfigError, load_config
    from etl_project.registry import RegistryDatabaseError, SecretKeyError, registry_url
    from etl_project.reports.server import ServerLimits, fit_open_files, listen, serve
    from etl_project.settings import Settings

    settings = Settings.from_env()
    _embedded_secret_key(settings)

    limits = fit_open_files(
        ServerLimits(max_connections=args.max_connections, header_timeout=args.header_timeout)
    )
    try:
        sock = listen(args.port, limits.backlog, args.host)
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    try:
        host, port = sock.getsockname()[:2]
        portal = build_portal(load_config(host, port), registry_url())
        portal.housekeeping.due()  # then again from sign-in and reset requests, at most every 10 minutes
        setup = first_operator_link(portal)
        ensure_dagster_home(settings)
        portal.backends = Backends(settings)
    except (PortalConfigError, SecretKeyError, RegistryDatabaseError, ValueError) as exc:
        sock.close()
        raise CommandError(str(exc)) from None
    print(f"District portal on http://{host}:{port}/ (people open {portal.config.public_url}/)")
    if not portal.config.secure:
        print("Cookies are not Secure: plain http on 127.0.0.1 is for development only (docs/portal.md).")
    if setup:
        print(f"First operator {portal.config.operator_email}: set the password (one-time link): {setup}")
    children = _start_sync_service(args, portal.backends, settings)
    stop = threading.Event()
    if children is not None:
        threading.Thread(target=children.wait_ready, args=(portal.backends.ready, stop), daemon=True).start()
    print("Ctrl-C to stop.", flush=True)
    try:
        serve(create_app(portal), sock, limits)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        sock.close()
        if children is not None:
            children.stop()
    return 0
