"""The portal's settings, from the command line and the environment.

| variable | meaning |
|---|---|
| ``ETL_PROJECT_PORTAL_URL`` | the address people open (``https://portal.example.org``): links, Origin check |
| ``ETL_PROJECT_PORTAL_TRUSTED_PROXY`` | the one peer whose X-Forwarded-For / -Proto are believed |
| ``ETL_PROJECT_PORTAL_OPERATOR_EMAIL`` | the first operator's e-mail (default ``operator@localhost``) |

Cookies are ``Secure`` whenever the portal URL is https. Only the embedded development default, a plain
``http://127.0.0.1`` (or localhost) URL, runs without: any other http URL is refused.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

URL_ENV = "ETL_PROJECT_PORTAL_URL"
PROXY_ENV = "ETL_PROJECT_PORTAL_TRUSTED_PROXY"
OPERATOR_ENV = "ETL_PROJECT_PORTAL_OPERATOR_EMAIL"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class PortalConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PortalConfig:
    public_url: str  # scheme://host[:port], no trailing slash
    trusted_proxy: str | None = None
    operator_email: str = "operator@localhost"

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def link(self, path: str) -> str:
        return self.public_url + path


def _public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PortalConfigError(
            f"{URL_ENV}={value!r} is not an http(s) URL such as https://portal.example.org"
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_NAMES:
        raise PortalConfigError(
            f"{URL_ENV}={value!r} is plain http on a network address: put a TLS reverse proxy in front and "
            "set it to the https:// address (docs/portal.md); plain http is for http://127.0.0.1 only"
        )
    return value.rstrip("/")


def _proxy(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise PortalConfigError(
            f"{PROXY_ENV}={value!r} is not an IP address (the proxy's own address)"
        ) from None


def load_config(host: str, port: int, env: Mapping[str, str] | None = None) -> PortalConfig:
    env = os.environ if env is None else env
    default = f"http://{'127.0.0.1' if host in ('127.0.0.1', 'localhost') else host}:{port}"
    url = _public_url(env.get(URL_ENV) or default)
    return PortalConfig(
        public_url=url,
        trusted_proxy=_proxy(env.get(PROXY_ENV)),
        operator_email=(env.get(OPERATOR_ENV) or "operator@localhost").strip().lower(),
    )
