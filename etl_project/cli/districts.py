"""``etl-project districts ...``: register districts, check their setup, pin host keys, manage the secret key.

Secrets are read from stdin (or a key file), stored encrypted, and never printed: ``show`` says only that a
secret is set (its length, or a private key's public fingerprint).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path

from etl_project.cli.district_arg import DISTRICT_HELP
from etl_project.cli.errors import CommandError

# ``districts test`` exit codes (also in its --help)
EXIT_OK, EXIT_ROWS, EXIT_REFUSED, EXIT_CONNECT, EXIT_NO_DROP = 0, 1, 2, 3, 4

TEST_EPILOG = """\
exit codes:
  0  connected, and the newest drop loads cleanly
  1  connected; the newest drop loads but some rows or files are rejected (listed above)
  2  the newest drop is refused as a whole, or the district's settings are wrong
  3  cannot connect or log in: server unreachable, login refused, host key not confirmed or CHANGED
  4  connected, but no complete drop is in the folder yet"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "districts",
        help="register districts, test their connection, manage credentials",
        description="The district registry (ETL_PROJECT_REGISTRY_URL, default "
        "$ETL_PROJECT_HOME/registry.sqlite). Credentials are encrypted with ETL_PROJECT_SECRET_KEY.",
    )
    sub = parser.add_subparsers(dest="districts_command", metavar="ACTION", required=True)
    _register_add(sub)
    _register_update(sub)
    _register_test(sub)
    _register_list_show_enable(sub)
    _register_remove_import(sub)
    _register_keys(sub)


def _register_add(sub: argparse._SubParsersAction) -> None:
    add = sub.add_parser(
        "add",
        help="register a district (SFTP, local folder or OneRoster REST)",
        description="Register a district. Exactly one of --sftp-host, --local-path, --rest-url says "
        "where its drops come from. Secrets are read from stdin (never from the command line) and stored "
        "encrypted.",
    )
    _district_arguments(add, help="the new district's id: a-z, 0-9, _ and - (e.g. lincoln)")
    add.add_argument("--name", required=True, help="the district's name, for people")
    _common_options(add)
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--sftp-host", help="the district's SFTP server")
    where.add_argument("--local-path", type=Path, help="a folder on this machine that receives the drops")
    where.add_argument("--rest-url", help="the district's OneRoster REST base URL (.../ims/oneroster/...)")
    _sftp_options(add)
    add.add_argument("--host-key", help="pin this OpenSSH host key line now (else `districts test` pins it)")
    _rest_options(add)
    add.add_argument("--client-id", help="REST: OAuth client id")
    add.add_argument("--oauth", type=int, choices=(1, 2), default=2, help="REST: OAuth version (default 2)")
    add.add_argument("--token-url", help="REST, OAuth 2: the token endpoint (required for OAuth 2)")
    add.add_argument(
        "--oauth1-signature-method",
        choices=("HMAC-SHA256", "HMAC-SHA1"),
        help="REST, OAuth 1.0a: default HMAC-SHA256 (OneRoster 1.1's); HMAC-SHA1 for older providers",
    )
    add.add_argument("--oneroster-version", choices=("1.1", "1.2"), default="1.2", help="REST: default 1.2")
    add.add_argument("--disabled", action="store_true", help="register it disabled (no runs until enabled)")
    add.add_argument("--replace", action="store_true", help="overwrite an existing district with this id")
    add.set_defaults(func=run_add)


def _register_update(sub: argparse._SubParsersAction) -> None:
    upd = sub.add_parser(
        "update",
        help="change a district's settings or credentials (e.g. a new SFTP password)",
        description="Change settings of a registered district. Only the options given change.",
    )
    _district_arguments(upd)
    upd.add_argument("--name", help="the district's name, for people")
    _common_options(upd, defaults=False)
    upd.add_argument("--sftp-host", help="the district's SFTP server")
    upd.add_argument("--local-path", type=Path, help="a folder on this machine that receives the drops")
    _sftp_options(upd, defaults=False)
    _rest_options(upd)
    upd.add_argument(
        "--forget-host-key",
        action="store_true",
        help="drop the pinned host key (after the district confirmed a new one; `districts test` pins again)",
    )
    upd.set_defaults(func=run_update)


def _register_test(sub: argparse._SubParsersAction) -> None:
    test = sub.add_parser(
        "test",
        help="is my setup right? log in, pin the host key, list drops, check the newest drop",
        description="Logs in to the district's source. On first use of an SFTP server, shows the server's "
        "host-key fingerprint and pins it once you confirm it (interactively, or with --trust-host-key); a "
        "changed key is refused. Then lists the drops in the folder, downloads the newest complete one to a "
        "temporary folder and validates it exactly as the nightly load would, without loading anything.",
        epilog=TEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _district_arguments(test)
    test.add_argument(
        "--trust-host-key",
        metavar="SHA256:...",
        help="confirm the server's host-key fingerprint non-interactively (must match what the server shows)",
    )
    test.add_argument("--json", action="store_true", help="print the drop report as JSON")
    test.set_defaults(func=run_test)


def _register_list_show_enable(sub: argparse._SubParsersAction) -> None:
    lst = sub.add_parser(
        "list",
        help="list registered districts",
        description="One line per registered district: id, name, source, enabled or not.",
    )
    lst.add_argument("--json", action="store_true", help="print the districts as JSON")
    lst.set_defaults(func=run_list)

    show = sub.add_parser(
        "show",
        help="show one district (secrets masked)",
        description="Every setting of one district, the pinned host-key fingerprint and which credentials "
        "are stored; secrets are never shown.",
    )
    _district_arguments(show)
    show.add_argument("--json", action="store_true", help="print the district as JSON")
    show.set_defaults(func=run_show)

    for action, enabled, text in (
        ("enable", True, "resume a district's runs"),
        ("disable", False, "stop a district's runs (its data and settings are kept)"),
    ):
        p = sub.add_parser(action, help=text, description=f"{text[0].upper()}{text[1:]}.")
        _district_arguments(p)
        p.set_defaults(func=run_enable, enabled=enabled)


def _register_remove_import(sub: argparse._SubParsersAction) -> None:
    rm = sub.add_parser(
        "remove",
        help="unregister a district and delete its warehouse data (archive only with --archive)",
        description="Deletes the district's warehouse data and Dagster partition and removes it (and its "
        "encrypted credentials) from the registry. The raw-file archive is kept unless --archive is given.",
    )
    _district_arguments(rm)
    rm.add_argument("--archive", action="store_true", help="also delete every archived file of the district")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(func=run_remove)

    imp = sub.add_parser(
        "import",
        help="import districts from a TOML districts file",
        description="Imports every district of a TOML districts file "
        "(format: etl_project/districts/toml_format.py). Secrets the file names by environment variable "
        "(password_env, private_key_env, private_key_file, passphrase_env) are read now and stored "
        "encrypted; the variables are not needed afterwards.",
    )
    imp.add_argument("file", nargs="?", type=Path, help="default: $ETL_PROJECT_DISTRICTS")
    imp.add_argument("--replace", action="store_true", help="overwrite districts that are already registered")
    imp.set_defaults(func=run_import)


def _register_keys(sub: argparse._SubParsersAction) -> None:
    key = sub.add_parser(
        "new-key",
        help="print a new random ETL_PROJECT_SECRET_KEY",
        description="Prints a new random key for ETL_PROJECT_SECRET_KEY (keep it in your secret manager).",
    )
    key.set_defaults(func=run_new_key)

    rot = sub.add_parser(
        "rotate-key",
        help="re-encrypt every stored credential with the current ETL_PROJECT_SECRET_KEY",
        description="Rotation: make a new key (districts new-key); set ETL_PROJECT_SECRET_KEY to it and "
        "ETL_PROJECT_SECRET_KEY_PREVIOUS to the old key; run rotate-key; then drop the old key everywhere.",
    )
    rot.set_defaults(func=run_rotate)


def _district_arguments(p: argparse.ArgumentParser, help: str = DISTRICT_HELP) -> None:
    """``--district ID``, as in every command; the positional ``ID`` of earlier releases still works."""
    p.add_argument("district_id", nargs="?", metavar="ID", help=argparse.SUPPRESS)
    p.add_argument("--district", metavar="ID", help=help)


def _common_options(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    p.add_argument("--timezone", default="UTC" if defaults else None, help="IANA time zone (default UTC)")
    p.add_argument(
        "--expected-by-hour",
        type=int,
        default=6 if defaults else None,
        metavar="H",
        help="local hour by which the night's drop should be there (default 6)",
    )


def _sftp_options(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    p.add_argument(
        "--sftp-port",
        type=int,
        default=22 if defaults else None,
        help="SFTP port" + (" (default 22)" if defaults else ""),
    )
    p.add_argument("--sftp-user", help="the SFTP login name")
    p.add_argument("--remote-dir", default="/" if defaults else None, help="the drop folder on the server")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the SFTP password from stdin")
    secret.add_argument(
        "--private-key", type=Path, metavar="FILE", help="SFTP private key file (OpenSSH/PEM)"
    )
    p.add_argument(
        "--passphrase-stdin", action="store_true", help="read the private key's passphrase from stdin"
    )


def _rest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--client-secret-stdin", action="store_true", help="REST: read the client secret from stdin"
    )


# ---------------------------------------------------------------------------------------------- helpers


def _registry():
    from etl_project.registry import Registry, RegistryDatabaseError

    try:
        return Registry()
    except RegistryDatabaseError as exc:
        raise CommandError(str(exc)) from None


def _guard(action: Callable[[], object]):
    """Run a registry action, turning expected failures into one clear line (never a traceback)."""
    from etl_project.districts import DistrictConfigError
    from etl_project.registry import RegistryDatabaseError, SecretKeyError
    from etl_project.sources import SourceConfigError

    try:
        return action()
    except (DistrictConfigError, SecretKeyError, RegistryDatabaseError, SourceConfigError) as exc:
        raise CommandError(str(exc)) from None


def read_secret(what: str) -> str:
    """One secret from stdin: a hidden prompt in a terminal, else the whole input minus its final newline."""
    value = getpass.getpass(f"{what}: ") if sys.stdin.isatty() else sys.stdin.read().rstrip("\r\n")
    if not value:
        raise CommandError(f"no {what} on stdin")
    return value


def _sftp_secrets(args: argparse.Namespace, who: str) -> dict[str, str | None] | None:
    from etl_project.sources.sftp import load_private_key

    if args.password_stdin:
        return {"password": read_secret("SFTP password")}
    if args.private_key:
        try:
            text = args.private_key.expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read private key file {args.private_key}: {exc}") from None
        passphrase = read_secret("private key passphrase") if args.passphrase_stdin else None
        _guard(lambda: load_private_key(text, passphrase, who))  # refuse an unusable key now, not at 2 a.m.
        return {"private_key": text, "passphrase": passphrase}
    if args.passphrase_stdin:
        raise CommandError("--passphrase-stdin goes with --private-key")
    return None


def describe_secret(name: str, value: str, passphrase: str | None = None) -> str:
    """What ``show`` prints for a secret: never the value."""
    if name == "private_key":
        from etl_project.sources import SourceConfigError
        from etl_project.sources.sftp import load_private_key

        try:
            key = load_private_key(value, passphrase, "this district")
            return f"set ({key.get_name()}, public key {key.fingerprint})"
        except SourceConfigError:
            return "set, but NOT a usable private key"
    return f"set ({len(value)} characters)"


def _source_line(district) -> str:
    return district.source.describe()


# ---------------------------------------------------------------------------------------------- commands


def run_new_key(args: argparse.Namespace) -> int:
    from etl_project.registry import SECRET_KEY_ENV, new_key

    print(new_key())
    print(
        f"Keep this key in your secret manager and export it as {SECRET_KEY_ENV} for every etl-project "
        "process. Losing it means re-entering every district's credentials.",
        file=sys.stderr,
    )
    return 0


def run_add(args: argparse.Namespace) -> int:
    from etl_project.districts import District, LocalSource, RestSource, SftpSource

    secrets: dict[str, str | None] | None = None
    if args.sftp_host:
        if not args.sftp_user:
            raise CommandError("--sftp-user is required with --sftp-host")
        who = f"{args.sftp_user}@{args.sftp_host}"
        secrets = _sftp_secrets(args, who)
        if secrets is None:
            raise CommandError("an SFTP district needs --password-stdin or --private-key FILE")
        host_key = ""
        if args.host_key:
            from etl_project.sources.sftp import parse_host_keys

            _guard(lambda: parse_host_keys(args.host_key))
            host_key = args.host_key.strip()
        source = SftpSource(
            host=args.sftp_host,
            port=args.sftp_port,
            username=args.sftp_user,
            remote_dir=args.remote_dir,
            host_key=host_key,
        )
    elif args.local_path:
        if args.password_stdin or args.private_key or args.client_secret_stdin:
            raise CommandError("a local-folder district has no credentials")
        source = LocalSource(path=str(args.local_path.expanduser().resolve()))
    else:
        if not args.client_id or not args.client_secret_stdin:
            raise CommandError("a REST district needs --client-id and --client-secret-stdin")
        secrets = {"client_secret": read_secret("OAuth client secret")}
        if args.oauth == 2 and not args.token_url:
            raise CommandError("OAuth 2 needs --token-url (the district's token endpoint)")
        source = RestSource(
            base_url=args.rest_url.rstrip("/"),
            client_id=args.client_id,
            version=args.oneroster_version,
            auth=f"oauth{args.oauth}",
            token_url=args.token_url,
            oauth1_signature_method=args.oauth1_signature_method,
        )
    district = District(
        id=args.district,
        name=args.name,
        source=source,
        timezone=args.timezone,
        enabled=not args.disabled,
        expected_by_hour=args.expected_by_hour,
    )
    registry = _registry()
    entry = _guard(lambda: registry.add(district, secrets, replace=args.replace))
    print(f"Registered {entry.id} ({entry.district.name}): {_source_line(entry.district)}")
    if entry.secret_fields:
        print(f"  credentials: {', '.join(entry.secret_fields)} stored encrypted in {registry.location}")
    print(f"Next: etl-project districts test {entry.id}")
    return 0


def run_update(args: argparse.Namespace) -> int:
    registry = _registry()
    entry = _guard(lambda: registry.entry(args.district))
    kind = getattr(entry.district.source, "kind", "")
    changes: dict[str, object] = {}
    for option, key in (("name", "name"), ("timezone", "timezone"), ("expected_by_hour", "expected_by_hour")):
        if getattr(args, option) is not None:
            changes[key] = getattr(args, option)
    sftp_changes = {
        "host": args.sftp_host,
        "port": args.sftp_port,
        "username": args.sftp_user,
        "remote_dir": args.remote_dir,
    }
    sftp_changes = {k: v for k, v in sftp_changes.items() if v is not None}
    secrets = None
    if kind == "sftp":
        changes.update(sftp_changes)
        src = entry.district.source
        secrets = _sftp_secrets(args, f"{src.username}@{src.host}")
    elif sftp_changes or args.password_stdin or args.private_key or args.forget_host_key:
        raise CommandError(f"district {args.district!r} is not an SFTP district")
    if args.local_path is not None:
        if kind != "local":
            raise CommandError(f"district {args.district!r} is not a local-folder district")
        changes["path"] = str(args.local_path.expanduser().resolve())
    if args.client_secret_stdin:
        if kind != "rest":
            raise CommandError(f"district {args.district!r} is not a REST district")
        secrets = {"client_secret": read_secret("OAuth client secret")}
    if not changes and secrets is None and not args.forget_host_key:
        raise CommandError("nothing to change (see etl-project districts update --help)")
    if changes or secrets is not None:
        _guard(lambda: registry.update(args.district, secrets, **changes))
    if args.forget_host_key:
        _guard(lambda: registry.forget_host_key(args.district))
        print(
            f"{args.district}: pinned host key forgotten; "
            f"`etl-project districts test {args.district}` pins the new one"
        )
    if secrets is not None:
        print(f"{args.district}: credentials replaced ({', '.join(k for k, v in secrets.items() if v)})")
    if changes:
        print(f"{args.district}: updated {', '.join(sorted(changes))}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    registry = _registry()
    entries = _guard(registry.entries)
    if args.json:
        print(json.dumps([_entry_json(e) for e in entries], indent=2))
        return 0
    if not entries:
        print(f"No districts registered in {registry.location}. Add one: etl-project districts add --help")
        return 0
    width = max(len(e.id) for e in entries)
    for e in entries:
        state = "enabled " if e.district.enabled else "DISABLED"
        pin = ""
        if getattr(e.district.source, "kind", "") == "sftp" and not e.district.source.host_key:
            pin = "  (host key not pinned yet: run districts test)"
        print(f"{e.id:<{width}}  {state}  {_source_line(e.district)}  {e.district.name}{pin}")
    return 0


def _entry_json(entry) -> dict[str, object]:
    d = entry.district
    src = {k: v for k, v in vars(d.source).items() if v not in (None, "") and not k.endswith("_env")}
    return {
        "id": d.id,
        "name": d.name,
        "enabled": d.enabled,
        "timezone": d.timezone,
        "expected_by_hour": d.expected_by_hour,
        "thresholds": dict(d.thresholds),
        "source": src,
        "host_key_pinned_at": entry.host_key_pinned_at,
        "secrets_set": list(entry.secret_fields),
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }


def run_show(args: argparse.Namespace) -> int:
    from etl_project.registry import MissingSecretKey, SecretKeyError

    registry = _registry()
    entry = _guard(lambda: registry.entry(args.district))
    if args.json:
        print(json.dumps(_entry_json(entry), indent=2))
        return 0
    d = entry.district
    src = d.source
    kind = getattr(src, "kind", "")
    print(f"{d.id}: {d.name}")
    print(f"  status        {'enabled' if d.enabled else 'DISABLED (no runs)'}")
    print(f"  time zone     {d.timezone}; drop expected by {d.expected_by_hour:02d}:00 local time")
    print(f"  source        {_source_line(d)}")
    if kind == "sftp":
        if src.host_key:
            from etl_project.registry.hostkey import pinned_fingerprints

            fps = ", ".join(_guard(lambda: pinned_fingerprints(src.host_key)))
            print(f"  host key      {fps}, pinned {entry.host_key_pinned_at or ''}".rstrip())
        else:
            print(f"  host key      not pinned yet: run `etl-project districts test {d.id}`")
    if kind == "rest":
        print(f"  client id     {src.client_id}")
    if d.thresholds:
        print(f"  thresholds    {json.dumps(dict(d.thresholds))}")
    secrets: dict[str, str] | None = None
    note = ""
    if entry.secret_fields:
        try:
            secrets = registry.secrets(d.id)
        except MissingSecretKey:
            note = " (encrypted; export ETL_PROJECT_SECRET_KEY to check it)"
        except SecretKeyError:
            note = " (encrypted, but CANNOT be decrypted with the configured keys)"
    for name in entry.secret_fields:
        shown = (
            describe_secret(name, secrets[name], secrets.get("passphrase"))
            if secrets and name in secrets
            else "set" + note
        )
        print(f"  {name.replace('_', ' '):<13} {shown}")
    if kind in ("sftp", "rest") and not entry.secret_fields:
        print("  credentials   NONE stored")
    print(f"  registered    {entry.created_at}; updated {entry.updated_at}")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    registry = _registry()
    _guard(lambda: registry.set_enabled(args.district, args.enabled))
    if args.enabled:
        print(f"{args.district}: enabled; its runs resume")
    else:
        print(f"{args.district}: disabled; no new runs start for it (data and settings kept)")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from etl_project.cli.offboard import remove_district
    from etl_project.settings import Settings

    registry = _registry()
    entry = _guard(lambda: registry.entry(args.district))
    what = "its warehouse data" + (" and ALL its archived files" if args.archive else "")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("refusing to remove without --yes when not interactive")
        answer = input(
            f"Remove district {entry.id!r} ({entry.district.name}), {what}? Type the id to confirm: "
        )
        if answer.strip() != entry.id:
            raise CommandError("not confirmed; nothing removed", exit_code=1)
    for line in remove_district(registry, Settings.from_env(), entry.id, archive=args.archive):
        print(line)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from etl_project.registry.toml_import import import_districts
    from etl_project.settings import Settings

    path = args.file or Path(Settings.from_env().districts_file)
    registry = _registry()
    done = _guard(lambda: import_districts(registry, path, replace_existing=args.replace))
    for item in done:
        secrets = f"; {', '.join(item.secret_fields)} stored encrypted" if item.secret_fields else ""
        print(f"{'replaced' if item.replaced else 'imported'} {item.district_id}{secrets}")
    print(f"{len(done)} district(s) from {path} into {registry.location}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from etl_project.registry import PREVIOUS_KEYS_ENV

    registry = _registry()
    count = _guard(registry.rotate_key)
    print(f"re-encrypted the credentials of {count} district(s) with the current key")
    print(f"Once every process uses the new key, remove the old one from {PREVIOUS_KEYS_ENV}.")
    return 0


# ---------------------------------------------------------------------------------------------- test


def run_test(args: argparse.Namespace) -> int:
    from etl_project.portal_services.onboarding import connection_steps, record_listing
    from etl_project.registry.nights import NightStates

    registry = _registry()
    entry = _guard(lambda: registry.entry(args.district))
    district = entry.district
    print(f"District {district.id} ({district.name}): {_source_line(district)}")
    if not district.enabled:
        print("  note: this district is DISABLED; the test still runs, nightly runs do not")
    steps = connection_steps(
        district,
        _guard(lambda: registry.credentials(district.id)),
        confirm=lambda key: _confirm(args, district.source, key),
        pin=lambda line: registry.pin_host_key(district.id, line),
        pinned_at=entry.host_key_pinned_at,
    )
    for step in steps:
        record_listing(NightStates(registry.url), district.id, step)
        code = _print_step(args, district, step)
        if code is not None:
            return code
    return EXIT_CONNECT


def _confirm(args: argparse.Namespace, src, key) -> bool:
    """Show the server's key; True once the admin confirmed it (--trust-host-key or typing yes)."""
    from etl_project.portal_services.onboarding import server_command
    from etl_project.registry.hostkey import normalize_fingerprint

    print(
        f"\nFirst connection to {src.host}:{src.port}. The server presents this host key:\n\n"
        f"    {key.key_type}  {key.fingerprint}\n\n"
        "This fingerprint identifies the server. Ask the district's server administrator to read theirs,\n"
        f"e.g. `{server_command(key)}` on the server,\nand compare every character. "
        "Once pinned, any other key is refused.\n"
    )
    if args.trust_host_key:
        given = normalize_fingerprint(args.trust_host_key)
        if given != normalize_fingerprint(key.fingerprint):
            print(
                f"REFUSED: --trust-host-key {given} does not match the server's key {key.fingerprint}; "
                "nothing was pinned and nothing was sent to the server.",
                file=sys.stderr,
            )
            return False
        print(f"Confirmed with --trust-host-key {given}.")
        return True
    if not sys.stdin.isatty():
        print(
            "Not pinned: confirm the fingerprint by running this command in a terminal, or pass "
            f"--trust-host-key {key.fingerprint} once the district has confirmed it.",
            file=sys.stderr,
        )
        return False
    if input("Is this the district's server key? Type yes to pin it: ").strip().lower() != "yes":
        print("Not pinned; nothing was sent to the server.", file=sys.stderr)
        return False
    return True


_FAILED = {"connect": EXIT_CONNECT, "host_key": EXIT_CONNECT, "login": EXIT_CONNECT, "download": EXIT_CONNECT}


def _print_step(args: argparse.Namespace, district, step) -> int | None:
    """Print one step as `districts test` always has; the exit code once the test is over, else None."""
    if step.name == "settings":
        raise CommandError(step.message)
    if step.name == "validate":
        _print_report(args, step)
        return step.data["exit_code"]
    if not step.ok:
        _print_failure(district, step)
        return _FAILED.get(step.name, EXIT_NO_DROP)
    if step.name == "host_key":
        print("Host key: pinned. From now on any other key is refused." if step.data.get("pinned")
              else f"Host key: {step.message}")  # fmt: skip
    elif step.name == "login":
        print("Login: OK")
    elif step.name == "list_drops":
        _print_drops(step)
    elif step.name == "download":
        where, files = step.data["location"], step.data["files"]
        print(f"\nNewest drop: {where} (downloaded {files} file(s), checking ...)\n")
    return None


def _print_failure(district, step) -> None:
    if step.name == "host_key" and step.data.get("changed"):
        print(
            f"\n!!! HOST KEY CHANGED: REFUSED !!!\n{step.message}\n"
            "This can mean someone is intercepting the connection, or the district rebuilt its server.\n"
            "Do not continue until the district confirms the new fingerprint (by phone, not by e-mail);\n"
            f"then: etl-project districts update {district.id} --forget-host-key && "
            f"etl-project districts test {district.id}",
            file=sys.stderr,
        )
    elif step.name == "host_key" and "fingerprint" not in step.data:
        print(f"\nREFUSED: {step.message}", file=sys.stderr)
    elif step.name == "login":
        print(
            f"Login FAILED: {step.message}. Check the user name and credentials with the district.",
            file=sys.stderr,
        )
    elif step.name == "list_drops":
        if "path" in step.data:
            _print_drops(step)
        print(step.message if "path" in step.data else f"Drop folder: {step.message}", file=sys.stderr)
    elif step.name in ("connect", "download"):
        print(step.message if step.name == "download" else f"Cannot connect: {step.message}", file=sys.stderr)


def _print_drops(step) -> None:
    print(f"Drop folder {step.data['path']}: {len(step.data['drops'])} complete drop(s)")
    for d in step.data["drops"]:
        print(
            f"  {d['night']:<10}  {d['kind']:<6}  {d['location']}  {d['files']} file(s), {d['bytes']:,} bytes"
        )


def _print_report(args: argparse.Namespace, step) -> None:
    from etl_project.cli.check_drop import render

    if args.json:
        print(json.dumps(step.report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render(Path(step.data["location"]), step.report))
    print(f"\n{step.message}")
