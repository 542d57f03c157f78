"""A district's SFTP server, through paramiko, with the host key pinned.

* The pinned key(s) (``host_key``: OpenSSH public key lines, or known_hosts lines) are added for
  ``[host]:port`` (``host`` on port 22) and every other key is refused by ``RejectPolicy``: a changed key
  raises ``HostKeyMismatch``, a key of a type with no pin raises ``UnknownHostKey``; both name host:port
  and the expected and offered SHA256 fingerprints. No credential is sent before the host key is accepted.
* Secrets are resolved only when connecting, from ``SftpCredentials`` passed in (e.g. from an encrypted
  registry) or from the environment variables the district config names. They never reach logs or errors.
* Links are never followed: entries are classified from the server's lstat attributes (``listdir_attr``),
  and before and after each download every path component below the district's folder is checked with
  ``lstat``. SFTP has no ``O_NOFOLLOW`` open, so a link swapped in and out between those checks is the
  remaining window; the check after the download discards the file if a link is there.
* Downloads use ``getfo`` with prefetch (bounded in-flight requests, so memory stays flat for big files),
  hashing while writing; small reads through fsspec-like wrappers are ~25x slower on loopback.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import io
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from etl_project.districts import MissingSecret, SftpSource, resolve_secret
from etl_project.nofollow import UnsafeEntry, describe_mode
from etl_project.sources.base import (
    DropNotFound,
    HostKeyMismatch,
    RemoteFile,
    SftpCredentials,
    SourceAuthenticationFailed,
    SourceConfigError,
    SourceConnectionError,
    SourceError,
    SourceInfo,
    UnknownHostKey,
)
from etl_project.sources.drop import MANIFEST_MAX_BYTES, DropSourceBase, Entry

PREFETCH_REQUESTS = 128  # x 32 KiB in flight: fast on loopback and WAN, memory bounded
_KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-")


def parse_host_keys(text: str) -> list[paramiko.PKey]:
    """Pinned keys from OpenSSH public key lines (``ssh-ed25519 AAAA... comment``) or known_hosts lines."""
    keys: list[paramiko.PKey] = []
    for lineno, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        idx = next((i for i, t in enumerate(tokens[:-1]) if t.startswith(_KEY_PREFIXES)), None)
        if idx is None:
            raise SourceConfigError(f"pinned host key line {lineno} is not an OpenSSH public key line")
        key_type, b64 = tokens[idx], tokens[idx + 1]
        try:
            keys.append(paramiko.PKey.from_type_string(key_type, base64.b64decode(b64, validate=True)))
        except (binascii.Error, ValueError):
            raise SourceConfigError(f"pinned host key line {lineno}: key data is not base64") from None
        except paramiko.UnknownKeyType:
            raise SourceConfigError(f"pinned host key line {lineno}: unsupported type {key_type!r}") from None
        except Exception as exc:  # malformed key blob
            raise SourceConfigError(f"pinned host key line {lineno}: bad {key_type} key ({exc})") from None
    return keys


def load_private_key(text: str, passphrase: str | None, who: str) -> paramiko.PKey:
    """A paramiko key from OpenSSH or PEM private key text (held in memory only, never written to disk)."""
    data = text.encode()
    pw = passphrase.encode() if passphrase else None
    loaded = None
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            loaded = loader(data, password=pw)
            break
        except Exception:  # wrong format, wrong or missing passphrase, unsupported algorithm
            continue
    classes = {rsa.RSAPrivateKey: paramiko.RSAKey, ed25519.Ed25519PrivateKey: paramiko.Ed25519Key}
    classes[ec.EllipticCurvePrivateKey] = paramiko.ECDSAKey
    key_class = next((c for t, c in classes.items() if isinstance(loaded, t)), None)
    if loaded is None or key_class is None:
        raise SourceConfigError(
            f"the private key for {who} could not be loaded: wrong or missing passphrase, "
            "or not an OpenSSH/PEM RSA, Ed25519 or ECDSA private key"
        )
    try:
        return key_class.from_private_key(io.StringIO(text), password=passphrase)
    except Exception:
        raise SourceConfigError(f"the private key for {who} could not be loaded by paramiko") from None


def resolve_credentials(source: SftpSource) -> SftpCredentials:
    """Read the secrets a district config references (environment variables / key file). Called at connect."""
    who = f"{source.username}@{source.host}"
    try:
        password = resolve_secret(source.password_env, f"SFTP password for {who}")
        private_key = resolve_secret(source.private_key_env, f"SFTP private key for {who}")
        passphrase = resolve_secret(source.passphrase_env, f"SFTP key passphrase for {who}")
    except MissingSecret as exc:
        raise SourceConfigError(str(exc)) from None
    if source.private_key_file and not private_key:
        try:
            private_key = Path(source.private_key_file).expanduser().read_text()
        except OSError as exc:
            raise SourceConfigError(
                f"SFTP private key file {source.private_key_file} for {who}: {exc.strerror}"
            ) from None
    return SftpCredentials(password=password, private_key=private_key, passphrase=passphrase)


class _HashingWriter:
    def __init__(self, out: BinaryIO):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)


class SftpDropSource(DropSourceBase):
    """Connects on first use; ``close()`` (or ``with``) ends the session."""

    def __init__(
        self,
        source: SftpSource,
        credentials: SftpCredentials | None = None,
        *,
        timeout: float = 20.0,
    ):
        self.source = source
        self._credentials = credentials
        self.timeout = timeout
        self.root = posixpath.normpath(source.remote_dir or "/")
        host = source.host if source.port == 22 else f"{source.host}:{source.port}"
        self.info = SourceInfo(kind="sftp", host=host, path=self.root)
        self._pinned = parse_host_keys(source.host_key)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def _where(self) -> str:
        return f"{self.source.host}:{self.source.port}"

    # -- connection -------------------------------------------------------------------------------------
    def _guarded_socket(self):
        """ETL_PROJECT_GUARD_SOURCES: a socket to a checked address of the host (else paramiko connects)."""
        from etl_project.portal_services.ssrf import UnsafeHost, connect_checked, guard_sources

        if not guard_sources():
            return None
        try:
            return connect_checked(self.source.host, self.source.port, self.timeout)
        except UnsafeHost as exc:
            raise SourceConfigError(str(exc)) from None

    def _connect_once(self, pinned: list[paramiko.PKey], creds: SftpCredentials, pkey) -> paramiko.SSHClient:
        s = self.source
        sock = self._guarded_socket()
        client = paramiko.SSHClient()
        name = s.host if s.port == 22 else f"[{s.host}]:{s.port}"
        for key in pinned:
            client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                s.host,
                port=s.port,
                username=s.username,
                password=creds.password,
                pkey=pkey,
                look_for_keys=False,
                allow_agent=False,
                sock=sock,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
            )
        except BaseException:
            client.close()
            if sock is not None:
                sock.close()
            raise
        return client

    def _refused(self, offered: paramiko.PKey) -> SourceError:
        expected = [k.fingerprint for k in self._pinned]
        pinned_types = sorted({k.get_name() for k in self._pinned})
        msg_expected = ", ".join(f"{k.fingerprint} ({k.get_name()})" for k in self._pinned) or "none pinned"
        if offered.get_name() in pinned_types:
            cls, what = HostKeyMismatch, "HOST KEY CHANGED"
        else:
            cls, what = UnknownHostKey, "UNKNOWN HOST KEY"
        return cls(
            f"{what} for {self._where}: the server offered {offered.fingerprint} ({offered.get_name()}) "
            f"but the pinned key is {msg_expected}. Refused; no credentials were sent. If the district "
            "really changed its server key, confirm the new fingerprint with them and update host_key.",
            host=self.source.host,
            port=self.source.port,
            expected=expected,
            offered=offered.fingerprint,
        )

    def connect(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        s = self.source
        if not self._pinned:
            raise UnknownHostKey(
                f"no host key is pinned for {self._where}; refusing to connect "
                "(`etl-project districts test <district>` shows the server's key and pins it once confirmed)",
                host=s.host,
                port=s.port,
                expected=[],
                offered="",
            )
        creds = self._credentials or resolve_credentials(s)
        if not (creds.password or creds.private_key):
            raise SourceConfigError(f"no password or private key for {s.username}@{s.host}")
        pkey = None
        if creds.private_key:
            pkey = load_private_key(creds.private_key, creds.passphrase, f"{s.username}@{s.host}")
        by_type: dict[str, paramiko.PKey] = {}
        for key in self._pinned:
            by_type.setdefault(key.get_name(), key)
        try:
            try:
                client = self._connect_once(list(by_type.values()), creds, pkey)
            except paramiko.BadHostKeyException as exc:
                # paramiko keeps one key per type; a second pinned key of the same type (rotation) is fine.
                if not any(k == exc.key for k in self._pinned):
                    raise self._refused(exc.key) from None
                client = self._connect_once([exc.key], creds, pkey)
        except paramiko.BadHostKeyException as exc:
            raise self._refused(exc.key) from None
        except paramiko.AuthenticationException:
            method = " and ".join(m for m, v in (("private key", pkey), ("password", creds.password)) if v)
            raise SourceAuthenticationFailed(
                f"the SFTP server {self._where} refused the {method} for {s.username}@{s.host}"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SourceConnectionError(
                f"cannot open an SSH session to {self._where}: {type(exc).__name__}: {exc}"
            ) from None
        self._client = client
        try:
            self._sftp = client.open_sftp()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise SourceConnectionError(f"{self._where} did not start an SFTP session: {exc}") from None
        return self._sftp

    def close(self) -> None:
        for thing in (self._sftp, self._client):
            if thing is not None:
                thing.close()
        self._sftp = self._client = None

    @contextmanager
    def _io(self, what: str) -> Iterator[paramiko.SFTPClient]:
        sftp = self.connect()
        try:
            yield sftp
        except FileNotFoundError:
            raise
        except PermissionError:
            raise SourceError(f"permission denied on {self._where} {what}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise SourceConnectionError(f"SFTP {what} on {self._where} failed: {exc}") from None

    # -- primitives -------------------------------------------------------------------------------------
    def _join(self, directory: str, name: str) -> str:
        return posixpath.join(directory, name)

    def _entry(self, path: str, name: str, attr: paramiko.SFTPAttributes) -> Entry:
        mode = attr.st_mode
        unsafe = "of a type the server does not report" if mode is None else describe_mode(mode)
        is_dir = mode is not None and stat.S_ISDIR(mode)
        return Entry(name, path, int(attr.st_size or 0), int(attr.st_mtime or 0), is_dir, unsafe)

    def _check_chain(self, sftp: paramiko.SFTPClient, path: str, *, last_is_file: bool) -> None:
        """lstat every component of ``path`` below the root: UnsafeEntry for a link or special file."""
        rel = self._relative(path)
        parts = [] if rel == "." else rel.split("/")
        for i in range(len(parts)):
            shown = "/".join(parts[: i + 1])
            want_file = last_is_file and i == len(parts) - 1
            mode = sftp.lstat(self._join(self.root, shown)).st_mode
            what = "of a type the server does not report" if mode is None else describe_mode(mode)
            if what is None and stat.S_ISDIR(mode or 0) == want_file:
                what = "a folder" if want_file else "not a folder"
            if what is not None:
                raise UnsafeEntry(shown, what)

    def _list_dir(self, path: str) -> list[Entry]:
        try:
            with self._io(f"listing {path}") as sftp:
                self._check_chain(sftp, path, last_is_file=False)
                attrs = sftp.listdir_attr(path)
                return [self._entry(self._join(path, a.filename), a.filename, a) for a in attrs]
        except FileNotFoundError:
            raise DropNotFound(f"{path} does not exist on {self._where}") from None

    def _stat(self, path: str) -> Entry | None:
        try:
            with self._io(f"stat {path}") as sftp:
                self._check_chain(sftp, posixpath.dirname(path), last_is_file=False)
                return self._entry(path, posixpath.basename(path), sftp.lstat(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    def _read_small(self, path: str) -> bytes:
        with self._io(f"reading {path}") as sftp:
            self._check_chain(sftp, path, last_is_file=True)
            with sftp.open(path, "rb") as f:
                return f.read(MANIFEST_MAX_BYTES + 1)

    def _download(self, remote: RemoteFile, dest: Path) -> tuple[int, str]:
        with self._io(f"download of {remote.path}") as sftp, open(dest, "wb") as out:
            self._check_chain(sftp, remote.path, last_is_file=True)
            writer = _HashingWriter(out)
            sftp.getfo(remote.path, writer, prefetch=True, max_concurrent_prefetch_requests=PREFETCH_REQUESTS)
        return writer.size, writer.sha.hexdigest()
