"""Self-contained HTML for the night report and the history page: inline CSS, inline SVG, no scripts, no
external assets, every value HTML-escaped (a Content-Security-Policy forbids scripts as a second guard)."""

from __future__ import annotations

from html import escape

from etl_project.reports.build import History, NightPoint, NightReport, RejectRow

REPORT_NAME = "report.html"
HISTORY_NAME = "history.html"
REJECTS_NAME = "rejects.csv"

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2933;
background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px} h2{font-size:1.2em;margin:28px 0 8px} .sub{color:#52606d;margin:0 0 16px}
.banner{padding:14px 18px;border-radius:8px;font-size:1.15em;font-weight:600;margin:12px 0}
.ok{background:#e3f9e5;color:#14532d;border:1px solid #8bd49b}
.warn{background:#fff7e0;color:#7a4b00;border:1px solid #f0c36d}
.bad{background:#ffe8e8;color:#8a1c1c;border:1px solid #f29b9b}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:1.4em} .card span{color:#52606d;font-size:.9em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{border:1px solid #d9e2ec;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef2f7} td.n{text-align:right;font-variant-numeric:tabular-nums}
code{background:#eef2f7;padding:1px 4px;border-radius:3px;word-break:break-all}
.next{font-weight:400;margin-top:6px}
.reason{font-weight:600} .fix{color:#0b5394} .muted{color:#7b8794;font-size:.9em}
a{color:#0b5394} nav a{margin-right:16px}
svg text{font-family:system-ui,sans-serif}
"""


def e(value: object) -> str:
    return "" if value is None else escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


# -- night report -------------------------------------------------------------------------------------------


def _rejected_text(r: NightReport) -> str:
    """The rejected files and rows, counted once (etl_project/oneroster/rejected.py)."""
    text = ""
    if r.files_rejected:
        names = ", ".join(f"{f.file} ({f.rows:,} rows)" for f in r.files_rejected)
        text += f" {len(r.files_rejected)} file(s) were rejected as a whole: {names}."
    if r.rejected:
        text += f" {r.rejected:,} row(s) were rejected; they are listed below with how to fix them."
    return text


def _sync_command(r: NightReport, extra: str = "") -> str:
    return f"etl-project sync --district {r.district} --date {r.date} --replay{extra}"


def _next_step(r: NightReport) -> str:
    """What to do about a night that did not reach the LMS, in one or two sentences."""
    state, night = r.lms_state, r.night
    detail = dict(night.detail) if night else {}
    if state == "blocked":
        what = f"fix {detail['file']} in the SIS export" if detail.get("file") else "fix the problem above"
        return (
            f"What to do: {what} and re-export the whole drop; the next drop is checked again (or re-run "
            f"this night once the fixed files are in place: {_sync_command(r)})."
        )
    if state == "held":
        return (
            "What to do: if the change is expected (e.g. end of term), release it once: "
            + _sync_command(r, ' --release-by "<you>" --release-reason "<why>"')
            + "; otherwise fix the export and wait for the next drop."
        )
    if state == "failed":
        return (
            f"What to do: our team is alerted; once the cause is fixed, re-run the night: {_sync_command(r)}."
        )
    if state == "missing":
        return (
            "What to do: check that the SIS export ran and reached the SFTP folder complete (with "
            "manifest.csv)."
        )
    return "What to do: wait for the run to finish, then open this report again."


_STATES = {
    "blocked": ("bad", "Blocked: a check failed, so nothing was applied to the LMS; it still holds the "
               "previous roster."),
    "held": ("warn", "Held: the drop arrived, but it would have changed more of the LMS than the safety "
             "limits allow, so nothing was applied."),
    "failed": ("bad", "Failed: the sync stopped before the LMS was updated, so nothing was applied."),
    "missing": ("bad", "Missing: no complete drop arrived for this night; the LMS was not changed."),
    "running": ("warn", "In progress: this night is being synced now."),
}  # fmt: skip


def _banner(r: NightReport) -> str:
    rejected = _rejected_text(r)
    if r.lms_state in _STATES:
        cls, text = _STATES[r.lms_state]
        night = r.night
        why = ""
        if night and night.reason:
            step = f" (step {night.step})" if night.step and r.lms_state == "failed" else ""
            why = f" Why{step}: {night.reason.rstrip('.')}."
        return (
            f'<div class="banner {cls}" id="status">{e(text + why + rejected)}'
            f'<div class="next" id="next-step">{e(_next_step(r))}</div></div>'
        )
    if not r.loaded:
        return (
            '<div class="banner bad" id="status">No drop was loaded for this night. If the export ran, check '
            "that it reached the SFTP folder complete (with manifest.csv).</div>"
        )
    if r.lms_state in ("applied", "released"):
        how = "released after review and applied" if r.lms_state == "released" else "applied to the LMS"
        cls = "warn" if r.rejected or r.files_rejected else "ok"
        text = f"Synced: this night's roster was {how}.{rejected}"
        return f'<div class="banner {cls}" id="status">{e(text)}</div>'
    return (
        '<div class="banner warn" id="status">The drop was checked, but it has not been applied to the '
        f"LMS yet.{e(rejected)}</div>"
    )


def _cards(r: NightReport) -> str:
    files_rejected = len(r.files_rejected)
    cards = [
        (r.received_at or "unknown", "new drop received at"),
        (f"{len(r.files)}" + (f" ({files_rejected} rejected)" if files_rejected else ""), "files"),
        (_n(r.rows), "rows received"),
        (_n(r.accepted), "rows accepted"),
        (_n(r.rejected), "rows rejected"),
        (r.lms_state or "not applied", "LMS"),
        (_n(r.changes), "LMS changes"),
    ]
    return (
        '<div class="cards" id="summary">'
        + "".join(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>' for v, k in cards)
        + "</div>"
    )


def _changes(r: NightReport) -> str:
    if not r.lms_counts:
        return ""
    ops = [
        op
        for op in ("created", "updated", "deactivated", "reactivated", "held")
        if any(op in c for c in r.lms_counts.values())
    ]
    head = "".join(f"<th>{e(op)}</th>" for op in ops)
    rows = "".join(
        f"<tr><td>{e(entity)}</td>"
        + "".join(f'<td class="n">{_n(c.get(op, 0))}</td>' for op in ops)
        + "</tr>"
        for entity, c in r.lms_counts.items()
    )
    title = "Changes not applied (held)" if r.lms_state == "held" else "Changes in the LMS"
    return f'<h2>{title}</h2><table id="changes"><tr><th>entity</th>{head}</tr>{rows}</table>'


def _problem_row(p: RejectRow, with_line: bool) -> str:
    cells = [f"<td>{e(p.file)}</td>"]
    if with_line:
        cells += [
            f'<td class="n">{e(p.line)}</td>',
            f"<td>{e(p.column)}</td>",
            f"<td><code>{e(p.value)}</code></td>",
        ]
    cells += [
        f'<td><div class="reason">{e(p.hint.reason)}</div><div class="muted">{e(p.message)}</div></td>',
        f'<td class="fix">{e(p.hint.fix)}</td>',
    ]
    return '<tr class="reject">' + "".join(cells) + "</tr>"


def _problems(r: NightReport) -> str:
    out = []
    if r.file_problems:
        out.append(
            '<h2>Whole files rejected</h2><p class="sub">These files were not loaded at all; '
            "fix them first.</p>"
            '<table id="file-problems"><tr><th>file</th><th>why</th><th>how to fix</th></tr>'
            + "".join(_problem_row(p, False) for p in r.file_problems)
            + "</table>"
        )
    rows = r.row_problems
    if rows or r.rejected:
        shown = len(r.rejects)
        more = (
            f" Showing the first {shown:,} of {r.rejects_total:,}; the full list is in "
            f'<a href="{REJECTS_NAME}">{REJECTS_NAME}</a>.'
            if r.rejects_total > shown
            else f' Also as a spreadsheet: <a href="{REJECTS_NAME}">{REJECTS_NAME}</a>.'
        )
        out.append(
            f"<h2>Rejected rows ({r.rejected:,})</h2>"
            '<p class="sub">These rows were left out; the rest of the file was loaded. '
            "Records on these rows "
            f"are kept as they were in the LMS until fixed.{more}</p>"
            '<table id="rejects"><tr><th>file</th><th>line</th><th>column</th><th>value</th>'
            "<th>why</th><th>how to fix</th></tr>" + "".join(_problem_row(p, True) for p in rows) + "</table>"
        )
    if not out:
        out.append('<h2>Rejected rows</h2><p id="rejects">None: every row was accepted.</p>')
    return "".join(out)


def _files(r: NightReport) -> str:
    if not r.files:
        return ""
    rows = "".join(
        f'<tr><td>{e(f.file)}</td><td>{e(f.mode)}</td><td>{e(f.status)}</td><td class="n">{_n(f.rows)}</td>'
        f'<td class="n">{_n(f.accepted)}</td><td class="n">{_n(f.rejected)}</td></tr>'
        for f in r.files
    )
    return (
        '<h2>Files</h2><table id="files"><tr><th>file</th><th>mode</th><th>status</th><th>rows</th>'
        f"<th>accepted</th><th>rejected</th></tr>{rows}</table>"
    )


def render_night(r: NightReport) -> str:
    notes = "".join(f"<li>{e(n)}</li>" for n in r.notes)
    body = (
        f'<nav><a href="{HISTORY_NAME}">Last 30 nights</a>'
        f'<a href="{REJECTS_NAME}">Rejected rows (CSV)</a></nav>'
        f"<h1>Roster sync report: {e(r.district_name)}</h1>"
        f'<p class="sub">Night of {e(r.date)} · district id {e(r.district)}</p>'
        + _banner(r)
        + _cards(r)
        + _problems(r)
        + (f'<h2>Worth a look</h2><ul id="notes">{notes}</ul>' if notes else "")
        + _changes(r)
        + _files(r)
        + (f'<p class="muted">Archived drop: {e(r.snapshot_uri)}</p>' if r.snapshot_uri else "")
    )
    return _page(f"{r.district_name}: roster sync {r.date}", body)


# -- history ------------------------------------------------------------------------------------------------

_SERIES = (
    ("received", "Rows received", "#3e7cb1"),
    ("rejected", "Rows rejected", "#d64545"),
    ("changes", "Changes applied to the LMS", "#2f8f4e"),
)
_W, _PANEL_H, _LEFT, _TOP = 1100, 150, 70, 24


def _value(p: NightPoint, series: str) -> int | None:
    if series == "received":
        return p.received
    if p.received is None:
        return None
    return p.rejected if series == "rejected" else p.changes


def chart_svg(nights: list[NightPoint]) -> str:
    """Three small panels (one scale each: rows received dwarf rows rejected), one bar per night."""
    n = max(len(nights), 1)
    plot_w = _W - _LEFT - 20
    step = plot_w / n
    bar_w = max(step * 0.7, 1.0)
    height = len(_SERIES) * (_PANEL_H + _TOP + 10) + 30
    parts = [
        f'<svg id="history-chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-label="Rows received, rejected and changes applied, '
        f'last {len(nights)} nights">'
    ]
    for i, (series, label, color) in enumerate(_SERIES):
        top = i * (_PANEL_H + _TOP + 10) + _TOP
        values = [_value(p, series) for p in nights]
        peak = max([v for v in values if v is not None] + [1])
        base = top + _PANEL_H
        parts.append(f'<text x="{_LEFT}" y="{top - 8}" font-size="14" font-weight="600">{e(label)}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{top + 10}" font-size="11" text-anchor="end">{peak:,}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{base}" font-size="11" text-anchor="end">0</text>')
        parts.append(
            f'<line x1="{_LEFT}" y1="{base}" x2="{_W - 20}" y2="{base}" stroke="#9aa5b1" stroke-width="1"/>'
        )
        for j, (p, v) in enumerate(zip(nights, values, strict=True)):
            x = _LEFT + j * step + (step - bar_w) / 2
            if v is None:
                parts.append(
                    f'<rect class="gap" x="{x:.1f}" y="{base - 6}" width="{bar_w:.1f}" height="6" '
                    'fill="#cbd2d9">'
                    f"<title>{e(p.date)}: no drop loaded</title></rect>"
                )
                continue
            h = max(_PANEL_H * v / peak, 1.5 if v else 0)
            state = f" ({p.state})" if p.state and series == "changes" else ""
            fill = "#e0a100" if p.state == "held" and series == "changes" else color
            parts.append(
                f'<rect class="bar {series}" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{fill}">'
                f"<title>{e(p.date)}: {v:,} {e(label.lower())}{e(state)}</title></rect>"
            )
    last_base = (len(_SERIES) - 1) * (_PANEL_H + _TOP + 10) + _TOP + _PANEL_H
    for j, p in enumerate(nights):
        if j % 5 == 0 or j == len(nights) - 1:
            x = _LEFT + j * step + step / 2
            parts.append(
                f'<text x="{x:.1f}" y="{last_base + 18}" font-size="11" text-anchor="middle">'
                f"{e(p.date[5:])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def render_history(h: History) -> str:
    rows = "".join(
        f"<tr><td>{e(p.date)}</td>"
        f"<td>{e(p.state or ('no drop' if p.received is None else 'not applied'))}</td>"
        f'<td class="n">{_n(p.received)}</td>'
        f'<td class="n">{_n(p.rejected if p.received is not None else None)}'
        f'</td><td class="n">{_n(p.changes)}</td><td>'
        + (f'<a href="../date={e(p.date)}/{REPORT_NAME}">report</a>' if p.received is not None else "")
        + "</td></tr>"
        for p in reversed(h.nights)
    )
    body = (
        f'<nav><a href="{REPORT_NAME}">Report of {e(h.until)}</a></nav>'
        f"<h1>Roster sync history: {e(h.district_name)}</h1>"
        f'<p class="sub">The last {len(h.nights)} nights up to {e(h.until)}. Grey marks are nights with no '
        "drop; an amber bar is a held night.</p>"
        + chart_svg(h.nights)
        + '<h2>Nights</h2><table id="nights"><tr><th>night</th><th>LMS</th><th>rows received</th>'
        f"<th>rejected</th><th>changes</th><th></th></tr>{rows}</table>"
    )
    return _page(f"{h.district_name}: roster sync history", body)
