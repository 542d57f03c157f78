"""The data-quality rules as Dagster asset checks, one verdict per district-night partition.

``oneroster_quality`` evaluates every OneRoster rule (etl_project/checks/rules.py) in one step and one
DuckDB connection, right after the night's tables are loaded. Its ``file_complete`` and row rules are
**blocking**: an ERROR (an empty, truncated or rejected file; an accepted row breaking a rule) stops
``lms/change_plan`` and every ``lms/*`` asset of the same run, while WARN verdicts (rows the ingest
rejected and holds, ``row_count_drift``) let the load go ahead. ``lms_quality`` checks the LMS after the
load (etl_project/checks/lms_rules.py); nothing is downstream of it, so it never blocks.

Thresholds are run config of the check step (``ops: {oneroster_quality: {config: {drift_threshold: 0.3}}}``).
"""

import warnings
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Config,
    MetadataValue,
    PreviewWarning,
    multi_asset_check,
)
from pydantic import Field

from etl_project.archive import ArchiveResource
from etl_project.assets.keys import oneroster
from etl_project.assets.lms import lms_key
from etl_project.assets.night_state import record_night
from etl_project.checks import lms_rules, rules
from etl_project.checks.rules import Finding, QualityThresholds
from etl_project.districts.resource import DistrictsResource
from etl_project.lms.resource import LmsResource
from etl_project.lms.schema import ENTITIES
from etl_project.night_tables import read_nights
from etl_project.oneroster.spec import SPECS
from etl_project.partitions import DistrictNight, district_nights
from etl_project.registry.nights import NightState
from etl_project.warehouse import WarehouseResource

NON_BLOCKING = {"row_count_drift"}


class QualityConfig(Config):
    drift_threshold: float = Field(
        default=0.2, description="row_count_drift warns when rows received change by more than this share"
    )
    truncation_threshold: float = Field(
        default=0.5,
        description="file_complete fails when a bulk file lost more than this share of the previous "
        "night's rows",
    )


def _spec(check: str, asset: AssetKey, description: str, blocking: bool) -> AssetCheckSpec:
    return AssetCheckSpec(
        check, asset=asset, description=description, blocking=blocking, partitions_def=district_nights
    )


# Partitioned asset checks are a preview feature in Dagster 1.13 (see etl_project/automation/freshness.py).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    ONEROSTER_SPECS = [
        _spec(c, oneroster(s.table), rules.RULE_DESCRIPTIONS[c], c not in NON_BLOCKING)
        for s in SPECS
        for c in rules.checks_for(s)
    ]
    LMS_SPECS = [
        _spec(c, lms_key(e.name), lms_rules.RULE_DESCRIPTIONS[c], False)
        for e in ENTITIES
        for c in lms_rules.checks_for(e)
    ]


def _md(sample: list[dict[str, Any]]) -> str:
    cols = list(sample[0])
    cell = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in sample]
    return "\n".join(lines)


def check_result(asset: AssetKey, finding: Finding) -> AssetCheckResult:
    metadata: dict[str, Any] = {"failing_count": finding.failing}
    for key, value in finding.metadata.items():
        metadata[key] = MetadataValue.json(value) if isinstance(value, dict | list) else value
    if finding.sample:
        metadata["sample"] = MetadataValue.md(_md(finding.sample))
    return AssetCheckResult(
        asset_key=asset,
        check_name=finding.check,
        passed=finding.passed,
        severity=AssetCheckSeverity.ERROR if finding.severity == rules.ERROR else AssetCheckSeverity.WARN,
        description=finding.description,
        metadata=metadata,
    )


_FILES = {s.table: s.file for s in SPECS}


def blocking_problems(findings: list[Finding]) -> list[dict[str, Any]]:
    """The failed ERROR findings of blocking checks, whole rejected files first: check, table, file, why."""
    failed = [
        f for f in findings if not f.passed and f.severity == rules.ERROR and f.check not in NON_BLOCKING
    ]
    failed.sort(key=lambda f: "file_rejected" not in f.metadata)
    return [
        {
            "check": f.check,
            "table": f.table,
            "file": _FILES.get(f.table, f.table),
            "description": f.description,
        }
        for f in failed
    ]


def blocked_reason(problems: list[dict[str, Any]]) -> str:
    """One sentence: the first blocking problem, and how many more."""
    first = problems[0]
    more = len(problems) - 1
    others = sorted({p["file"] for p in problems[1:]} - {first["file"]})
    tail = (
        f" (and {more} more blocking problem(s){': ' + ', '.join(others) if others else ''})" if more else ""
    )
    return f"check {first['check']} failed for {first['file']}: {first['description']}{tail}"


@multi_asset_check(
    specs=ONEROSTER_SPECS,
    description="Data-quality rules over the night's OneRoster tables (etl_project/checks/rules.py).",
)
def oneroster_quality(
    context: AssetCheckExecutionContext,
    config: QualityConfig,
    warehouse: WarehouseResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
):
    night = DistrictNight.of(context.partition_key)
    try:
        limits = QualityThresholds(drift=config.drift_threshold, truncation=config.truncation_threshold)
    except ValueError as exc:
        raise ValueError(f"oneroster_quality config: {exc}") from None
    with read_nights(warehouse, archive.open(), night.district, [night.date]) as conn:
        findings = rules.evaluate_night(conn, night.date, limits)
    failed = [f for f in findings if not f.passed]
    context.log.info(
        f"{night}: {len(findings) - len(failed)} OneRoster checks passed, {len(failed)} failed"
        + "".join(f"\n  {f.severity} {f.table}.{f.check}: {f.description}" for f in failed)
    )
    problems = blocking_problems(findings)
    if problems:  # the blocking checks stop the LMS load: the night is blocked, and this says why
        first = problems[0]
        record_night(
            districts, night, NightState.BLOCKED, context.run.run_id, context.log,
            reason=blocked_reason(problems), step="oneroster_quality",
            detail={"check": first["check"], "file": first["file"], "problems": problems},
        )  # fmt: skip
    for finding in findings:
        yield check_result(oneroster(finding.table), finding)


@multi_asset_check(
    specs=LMS_SPECS,
    description="Data-quality rules over the LMS after the night was applied "
    "(etl_project/checks/lms_rules.py).",
)
def lms_quality(context: AssetCheckExecutionContext, lms: LmsResource):
    night = DistrictNight.of(context.partition_key)
    for finding in lms_rules.evaluate_lms(lms.backend(), night.district):
        yield check_result(lms_key(finding.table), finding)


quality_checks = [oneroster_quality, lms_quality]
