"""``etl-project portal``: the district portal (docs/portal.md) under uvicorn, with the report server's
limits."""

from __future__ import annotations

import argparse

from etl_project.cli.errors import CommandError


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.portal.app import build_portal, create_app
    from etl_project.portal.bootstrap import first_operator_link
    from etl_project.portal.config import PortalConfigError, load_config
    from etl_project.registry import RegistryDatabaseError, SecretKeyError, registry_url
    from etl_project.reports.server import ServerLimits, fit_open_files, listen, serve

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
        setup = first_operator_link(portal)
    except (PortalConfigError, SecretKeyError, RegistryDatabaseError, ValueError) as exc:
        sock.close()
        raise CommandError(str(exc)) from None
    print(f"District portal on http://{host}:{port}/ (people open {portal.config.public_url}/)")
    if not portal.config.secure:
        print("Cookies are not Secure: plain http on 127.0.0.1 is for development only (docs/portal.md).")
    if setup:
        print(f"First operator {portal.config.operator_email}: set the password (one-time link): {setup}")
    print("Ctrl-C to stop.", flush=True)
    try:
        serve(create_app(portal), sock, limits)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
