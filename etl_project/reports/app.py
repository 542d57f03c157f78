"""The sync reports as a Starlette app, one capability URL per district (tokens: ``reports.serve``).

    /d/<token>/                                   -> redirect to the latest night's history page
    /d/<token>/date=<YYYY-MM-DD>/report.html      the night's report
    /d/<token>/date=<YYYY-MM-DD>/history.html     the 30 nights up to that night
    /d/<token>/date=<YYYY-MM-DD>/rejects.csv      every rejected row

The district comes from the token only and the file name from a fixed allow-list, so no part of the URL is
ever used as a path: another district's pages, traversal (``..``, encoded or not) and anything else get 404.
Pages are read through the archive, which never follows a link and returns only files etl-project wrote
(``UnsafeArchiveEntry`` otherwise: logged as a security warning, answered 404). Only GET and HEAD are
answered. ``create_app`` is a factory whose URLs are relative, so the pages can be mounted in a larger app.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etl_project.archive.base import Archive, ArchiveError, UnsafeArchiveEntry
from etl_project.reports.html import HISTORY_NAME, REJECTS_NAME, REPORT_NAME
from etl_project.reports.serve import TokenMap, latest_report_night

PAGES = {
    REPORT_NAME: "text/html; charset=utf-8",
    HISTORY_NAME: "text/html; charset=utf-8",
    REJECTS_NAME: "text/csv; charset=utf-8",
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a capability URL must not leak through the Referer header
    "Cache-Control": "no-store",
}

Log = Callable[[str], None]
T = TypeVar("T")


def masked(path: str) -> str:
    """A request path fit for a log: the capability token replaced, length bounded."""
    return re.sub(r"^/d/[^/]*", "/d/<token>", path)[:200]


class GuardHeaders:
    """ASGI middleware: the security headers on every response, one log line per request (token masked)."""

    def __init__(self, app: ASGIApp, log: Log):
        self.app, self.log = app, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 0

        async def guarded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        finally:
            self.log(f"{scope['method']} {masked(scope['path'])} {status}")


def _not_found() -> Response:
    return PlainTextResponse("Not found\n", status_code=404)


def report_routes(archive: Archive, tokens: TokenMap, log: Log = print) -> list[Route]:
    """The report URLs as Starlette routes (sync endpoints: archive reads run in the bounded thread pool)."""

    def district_of(request: Request) -> str | None:
        token = request.path_params["token"]
        return tokens.lookup(token) if _TOKEN.fullmatch(token) else None

    def archived(request: Request, read: Callable[[], T]) -> T | None:
        """``read()`` from the archive; None (answered 404) when it fails or refuses, a refusal logged."""
        try:
            return read()
        except UnsafeArchiveEntry as exc:
            log(f"warning: {exc} (asked for {masked(request.url.path)})")
        except (ArchiveError, ValueError):
            pass
        return None

    def landing(request: Request) -> Response:
        district = district_of(request)
        night = archived(request, lambda: latest_report_night(archive, district)) if district else None
        if night is None:
            return _not_found()
        return RedirectResponse(f"date={night}/{HISTORY_NAME}", status_code=302)

    def page(request: Request) -> Response:
        district = district_of(request)
        date, name = request.path_params["date"], request.path_params["name"]
        if district is None or not _DATE.fullmatch(date) or name not in PAGES:
            return _not_found()
        data = archived(request, lambda: archive.get_bytes(district, date, name))
        if data is None:
            return _not_found()
        headers = {}
        if name == REJECTS_NAME:
            headers["Content-Disposition"] = f'attachment; filename="{district}-{date}-rejects.csv"'
        return Response(data, media_type=PAGES[name], headers=headers)

    return [
        Route("/d/{token}/", landing, methods=["GET", "HEAD"]),
        Route("/d/{token}/date={date}/{name}", page, methods=["GET", "HEAD"]),
    ]


def create_app(archive: Archive, tokens: TokenMap, log: Log = print) -> Starlette:
    """The report pages as an ASGI app: security headers and token-free logging on every response."""
    app = Starlette(routes=report_routes(archive, tokens, log))
    app.router.redirect_slashes = False  # /d/<token> is not a URL; it is not redirected either
    app.add_middleware(GuardHeaders, log=log)
    return app
