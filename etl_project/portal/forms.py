"""Reading a posted HTML form: URL-encoded only, bounded in size and fields, one value per name."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_BYTES = 16 * 1024
MAX_FIELDS = 32


class BadForm(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields; BadForm when it is not a URL-encoded form, too large, or names a field twice
    (a tampered form is refused rather than guessed at)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("the request is not a URL-encoded form")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise BadForm("the form is too large")
    try:
        pairs = parse_qsl(
            body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm("the form cannot be read") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise BadForm("the form names a field more than once")
    return fields
