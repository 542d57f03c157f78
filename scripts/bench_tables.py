#!/usr/bin/env python3
"""Write the benchmark tables of docs/benchmarks.md from the JSON that ``etl-project bench --json`` printed.

Each table sits between two marker comments in the document, and only the lines between them are replaced:

    <!-- bench:ingest -->      ingest runs   (etl-project bench --students N --json)
    <!-- bench:lms -->         LMS load runs (etl-project bench --lms postgres --students N --json)
    <!-- bench:lms-phases -->  where the LMS runs' time went (first_load_phases_s, day2_phases_s)
    <!-- bench:portal -->      portal page latencies (etl-project bench --portal --students N --json)
    <!-- bench:small -->       small districts through the daemon (etl-project bench --small --json)
    <!-- bench:soak -->        soak runs     (etl-project bench --soak --districts N --json)
    <!-- /bench:NAME -->       closes each of them

Every ``*.json`` file of the JSON folder is one run, one row, ordered by students; an optional ``"code"`` key
names the code a run measured (for a before/after pair). A run is a portal run when its JSON has
``"portal": true``, a small-districts run when it has ``"bench": "daemon-small"``, a soak run when it has
``district_nights`` (ordered by districts, then by when they ran), an LMS run when it has ``first_load_s``,
else an ingest run.
Figures are copied from the JSON, only formatted.

    scripts/bench_tables.py                      # rewrite docs/benchmarks.md from docs/bench/*.json
    scripts/bench_tables.py --check              # exit 1 if the document is not what the JSON gives
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
Run = dict[str, object]


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def count(value: int) -> str:
    return f"{value:,}"


def megabytes(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def cpu(split: dict[str, float] | None) -> str:
    """``{"loader": a, "postgres": b}`` as ``a + b s``; "n/a" where the server's CPU was unknown."""
    return "n/a" if split is None else f"{split['loader']:.2f} + {split['postgres']:.2f} s"


def sized(size: str, run: Run) -> str:
    """The run's size, and the code it measured when the JSON names it (``"code"``: e.g. an earlier build)."""
    return size + (f" ({run['code']})" if run.get("code") else "")


def students(run: Run) -> str:
    return sized(count(run["students"]), run)


def best_of(run: Run) -> str:
    return f"best of {run['repeat']}" if "repeat" in run else "1"


def ingest_rows(runs: list[Run]) -> list[list[str]]:
    return [
        [
            students(r),
            count(r["rows"]),
            megabytes(r["bytes"]),
            best_of(r),
            seconds(r["bare_duckdb_s"]),
            seconds(r["fetch_s"]),
            seconds(r["archive_s"]),
            seconds(r["normalize_s"]),
            seconds(r["publish_s"]) if "publish_s" in r else "n/a",
            f"**{r['normalize_ratio']:.2f}**",
            f"**{r['ingest_ratio']:.2f}**",
            f"{r['peak_rss_mb']:,.0f} MB",
        ]
        for r in runs
    ]


INGEST_HEADER = [
    "students", "rows", "CSV size", "runs", "floor: bare DuckDB", "fetch (SFTP)", "archive", "normalize",
    "publish (Parquet)", "normalize / floor (target ≤ 2)", "ingest / floor (target ≤ 4)",
    "peak RSS (target ≤ 2 GB)",
]  # fmt: skip


def lms_rows(runs: list[Run]) -> list[list[str]]:
    return [
        [
            students(r),
            count(r["rows"]),
            best_of(r),
            seconds(r["copy_floor_s"]),
            seconds(r["first_load_s"]),
            f"**{r['first_load_ratio']:.2f}x**",
            f"{seconds(r['day2_s'])} ({count(r['day2_rows_written'])} rows)",
            f"**{r['day2_ratio_to_first_load']:.1%}**",
            count(r["day2_lms_rows_read_back"]),
            cpu(r.get("first_load_cpu_s")),
            f"{r['first_load_cpu_bound_ratio']:.2f}" if "first_load_cpu_bound_ratio" in r else "n/a",
            f"{r['peak_rss_mb']:,.0f} MB",
        ]
        for r in runs
    ]


LMS_HEADER = [
    "students", "LMS rows", "runs", "COPY floor", "first load", "first / floor (target ≤ 3)",
    "day 2 (rows written)", "day 2 / first (target ≤ 25%)", "day 2 rows read back",
    "first load CPU (loader + postgres)", "CPU-bound ratio", "peak RSS (target ≤ 2 GB)",
]  # fmt: skip

PHASES = ("changeset_s", "entities_s", "ledger_s", "commit_s")


def phase_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for r in runs:
        for night, key in (("first load", "first_load_phases_s"), ("day 2", "day2_phases_s")):
            phases = r[key]
            rows.append([students(r), night, *(seconds(phases[p]) for p in PHASES)])
    return rows


PHASES_HEADER = ["students", "night", "change set", "entity writes", "ledger", "commit"]


def portal_rows(runs: list[Run]) -> list[list[str]]:
    return [
        [students(r), page, count(r["requests"]), f"{t['p50_ms']:.1f} ms", f"**{t['p95_ms']:.1f} ms**",
         f"{t['max_ms']:.1f} ms", f"{t['cpu_ms']:.1f} ms" if "cpu_ms" in t else "n/a"]
        for r in runs
        for page, t in r["pages"].items()
    ]  # fmt: skip


PORTAL_HEADER = [
    "students",
    "page",
    "requests",
    "p50",
    "p95 (target < 200 ms)",
    "max",
    "portal CPU / request",
]


def small_rows(runs: list[Run]) -> list[list[str]]:
    return [
        [
            sized(f"{r['districts']} × {count(r['students'])}", r),
            f"{r['succeeded']} of {r['district_nights']}",
            seconds(r["wall_s"]),
            f"**{r['district_nights_per_hour']:,.0f}**",
            seconds(r["floor_wall_s"]),
            f"{r['floor_district_nights_per_hour']:,.0f}",
            f"**{r['overhead_ratio']:.2f}**",
            seconds(r["per_run_overhead_s"]),
            seconds(r["median_run_wall_s"]),
            seconds(r["median_step_work_s"]),
            seconds(r["median_queue_to_start_s"]),
        ]
        for r in runs
    ]


SMALL_HEADER = [
    "districts × students", "nights ok", "daemon wall", "nights / hour (target ≥ 1,500)", "floor wall",
    "floor nights / hour", "overhead ratio (wall × cores / floor)", "per-run overhead (median)",
    "run wall (median)", "step work (median)", "queued → started (median)",
]  # fmt: skip


def optional(value: float | None, unit: str = " s") -> str:
    return "n/a" if value is None else f"{value:,.2f}{unit}"


def per_hour(run: Run) -> str:
    return (
        f"**{run['district_nights_per_hour']:,.0f}** ({run['district_nights_per_hour_per_core']:,.0f} a core)"
    )


def partition_page(run: Run) -> str:
    """The soak's partition page p95, and the same queries' p95 on a quiet machine when the JSON has it."""
    quiet = run.get("ui_quiet_after_soak")
    again = f"; quiet: {seconds(quiet['partition_page_p95_s'])}" if quiet else ""
    return f"{optional(run['partition_page_p95_s'])} ({count(run['partitions_per_asset'])} partitions{again})"


def soak_rows(runs: list[Run]) -> list[list[str]]:
    return [
        [
            sized(count(r["districts"]), r),
            count(r["district_nights"]),
            f"{r['cores']}",
            seconds(r["wall_s"]),
            per_hour(r),
            optional(r["per_run_overhead_s"]),
            f"{optional(r['p50_drop_to_applied_s'])} / {optional(r['p95_drop_to_applied_s'])}",
            optional(r["max_sensor_tick_s"]),
            partition_page(r),
            optional(r["overhead_ratio"], ""),
            f"{r['lost_runs']} / {r['duplicate_runs']} / {r['cross_district_effects']}",
        ]
        for r in runs
    ]


SOAK_HEADER = [
    "districts", "district-nights", "cores", "wall", "district-nights / hour", "per-run overhead (median)",
    "drop → applied p50 / p95", "max sensor tick", "partition page p95",
    "overhead ratio (soak × cores / floor)",
    "lost / duplicated / cross-district",
]  # fmt: skip

TABLES: dict[str, tuple[str, list[str], Callable[[list[Run]], list[list[str]]]]] = {
    "ingest": ("ingest", INGEST_HEADER, ingest_rows),
    "lms": ("lms", LMS_HEADER, lms_rows),
    "lms-phases": ("lms", PHASES_HEADER, phase_rows),
    "portal": ("portal", PORTAL_HEADER, portal_rows),
    "small": ("small", SMALL_HEADER, small_rows),
    "soak": ("soak", SOAK_HEADER, soak_rows),
}


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def load_runs(paths: list[Path]) -> dict[str, list[Run]]:
    """The runs by kind (ingest, lms, portal, small, soak), each kind ordered by its size."""
    runs: dict[str, list[Run]] = {"ingest": [], "lms": [], "portal": [], "small": [], "soak": []}
    for path in paths:
        try:
            run = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}: line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg})") from None
        if run.get("portal"):
            kind = "portal"
        elif run.get("bench") == "daemon-small":
            kind = "small"
        elif "district_nights" in run:
            kind = "soak"
        else:
            kind = "lms" if "first_load_s" in run else "ingest"
        runs[kind].append(run)
    for kind, listed in runs.items():
        if kind == "soak":  # by size, then in the order they ran
            listed.sort(key=lambda r: (r["districts"], r.get("published_at", 0)))
        else:
            listed.sort(key=lambda r: r["students"])
    return runs


def render(document: str, runs: dict[str, list[Run]], where: str) -> str:
    """The document with the lines between each pair of markers replaced by that table."""
    found = False
    for name, (kind, header, rows) in TABLES.items():
        tag = re.escape(name)
        pattern = re.compile(rf"(<!-- bench:{tag} -->\n)(.*?)(<!-- /bench:{tag} -->)", re.S)
        if not pattern.search(document):
            continue
        found = True
        if not runs[kind]:
            needs = f"the table bench:{name} needs at least one {kind} run's JSON"
            raise SystemExit(f"{where}: {needs}; none given")
        table = markdown(header, rows(runs[kind]))
        document = pattern.sub(lambda m, t=table: f"{m.group(1)}{t}\n{m.group(3)}", document)
    if not found:
        names = ", ".join(TABLES)
        raise SystemExit(f"{where}: no <!-- bench:NAME --> ... <!-- /bench:NAME --> markers (NAME: {names})")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the document")
    parser.add_argument("--json-dir", type=Path, default=ROOT / "docs" / "bench", help="folder of the runs")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the tables differ")
    args = parser.parse_args(argv)
    paths = sorted(args.json_dir.glob("*.json"))
    document = args.doc.read_text()
    updated = render(document, load_runs(paths), str(args.doc))
    if args.check:
        if updated != document:
            print(f"{args.doc}: tables differ from {args.json_dir}/*.json; run scripts/bench_tables.py")
            return 1
        return 0
    if updated != document:
        args.doc.write_text(updated)
        print(f"{args.doc}: tables written from {len(paths)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
