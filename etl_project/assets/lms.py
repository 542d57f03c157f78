"""The night's roster applied to the LMS: a change plan behind a blocking safety check, then one transaction.

``lms/change_plan`` computes the change set against the LMS as it is now (a dry run) and carries the
``within_safety_thresholds`` check: **blocking**, ERROR when the district holds whole nights (the default),
so ``lms/*`` is not materialized; WARN when the district holds only deactivations (creates and updates then
apply). A held night is recorded in ``sync_runs``. To release it once, re-run the partition with the run tags
``etl_project/release_by=<who>`` and ``etl_project/release_reason=<why>`` (or the same values as run config
``release_by`` / ``release_reason`` on both ops); the release is recorded in ``sync_runs`` and the ledger.

``lms/schools`` ... ``lms/enrollments`` are applied together in one transaction (the change set is
recomputed inside it, under the district's lock), so the LMS never shows half a night.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
    asset,
    multi_asset,
)
from pydantic import Field

from etl_project.archive import ArchiveResource
from etl_project.assets.keys import OWNERS, oneroster
from etl_project.assets.night_state import record_night
from etl_project.districts.resource import DistrictsResource
from etl_project.lms import Release, Thresholds, load_night, plan_night
from etl_project.lms.load import refuse_older_night
from etl_project.lms.mapping import column_lineage
from etl_project.lms.resource import LmsResource
from etl_project.lms.schema import ENTITIES, OPERATIONS, Entity
from etl_project.night_tables import read_nights
from etl_project.partitions import DistrictNight, district_nights
from etl_project.registry.nights import NightState
from etl_project.run_owner import claim_run
from etl_project.settings import Settings
from etl_project.warehouse import WarehouseResource

CHANGE_PLAN = AssetKey(["lms", "change_plan"])
CHECK_NAME = "within_safety_thresholds"
RELEASE_BY_TAG = "etl_project/release_by"
RELEASE_REASON_TAG = "etl_project/release_reason"
_KIND = Settings.from_env().lms_kind


def lms_key(entity: str) -> AssetKey:
    return AssetKey(["lms", entity])


class LmsRunConfig(Config):
    release_by: str = Field(
        default="", description="who releases a held night (one-time, with release_reason)"
    )
    release_reason: str = Field(default="", description="why the held night is released")


def _release(context: AssetExecutionContext, config: LmsRunConfig) -> Release | None:
    tags = context.run.tags
    by = config.release_by or tags.get(RELEASE_BY_TAG, "")
    reason = config.release_reason or tags.get(RELEASE_REASON_TAG, "")
    if not by and not reason:
        return None
    try:
        return Release(by=by, reason=reason)
    except ValueError as exc:
        raise Failure(description=f"{exc}: set both {RELEASE_BY_TAG} and {RELEASE_REASON_TAG}") from None


def _thresholds(districts: DistrictsResource, district: str) -> Thresholds:
    return Thresholds.from_config(districts.get(district).thresholds, f"district {district!r} thresholds")


def release_instructions(night: DistrictNight) -> str:
    return (
        f"To apply this night once anyway, re-run partition {night} with run tags "
        f"{RELEASE_BY_TAG}=<your name> and {RELEASE_REASON_TAG}=<why> (Launchpad > Edit tags), or: "
        f'etl-project sync --district {night.district} --date {night.date} --replay --release-by "<you>" '
        '--release-reason "<why>"'
    )


def _record_held(context, districts: DistrictsResource, night: DistrictNight, verdict, step: str) -> None:
    record_night(
        districts, night, NightState.HELD, context.run.run_id, context.log,
        reason=f"the safety thresholds held the night: {verdict.describe()}", step=step,
        detail={
            "breaches": [b.to_json() for b in verdict.breaches],
            "how_to_release": release_instructions(night),
        },
    )  # fmt: skip


def _record_result(context, districts: DistrictsResource, night: DistrictNight, result, thresholds) -> None:
    """The night's state from the load: applied (or unchanged: applied before), released, or held."""
    if result.state == "held" and thresholds.hold == "all":
        _record_held(context, districts, night, result.verdict, "lms_entities")
    elif result.state == "held":  # hold mode "deactivations": creates and updates went in
        record_night(
            districts, night, NightState.HELD, context.run.run_id, context.log, step="lms_entities",
            reason="applied except the deactivations, held by the safety thresholds: "
            + result.verdict.describe(),
            detail={"how_to_release": release_instructions(night), "partly_applied": True},
        )  # fmt: skip
    else:
        state = NightState.RELEASED if result.state == "released" else NightState.APPLIED
        detail = {"released_by": result.released_by, "release_reason": result.release_reason}
        record_night(
            districts, night, state, context.run.run_id, context.log, step="lms_entities",
            detail={k: v for k, v in detail.items() if v},
        )  # fmt: skip


_SOURCES = sorted({e.source for e in ENTITIES} | {"roles", "rejects"})


@asset(
    key=CHANGE_PLAN,
    deps=[oneroster(t) for t in _SOURCES],
    partitions_def=district_nights,
    group_name="lms",
    kinds={"duckdb", _KIND},
    owners=OWNERS,
    description="The night's change set against the LMS as it is now: per entity, how many rows would be "
    "created, updated, deactivated, reactivated, left unchanged or held (rejected, or parent rejected). "
    "Checked against the district's safety thresholds before anything is written.",
    check_specs=[
        AssetCheckSpec(
            CHECK_NAME,
            asset=CHANGE_PLAN,
            blocking=True,
            description="Holds the night when more than 10% of an entity would be deactivated or more "
            "than 75% updated (defaults; per district and entity in the districts file).",
        )
    ],
)
def lms_change_plan(
    context: AssetExecutionContext,
    config: LmsRunConfig,
    lms: LmsResource,
    warehouse: WarehouseResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
):
    claim_run(context)
    night = DistrictNight.of(context.partition_key)
    thresholds = _thresholds(districts, night.district)
    release = _release(context, config)
    backend = lms.backend()
    refuse_older_night(backend, night.district, night.date)
    with read_nights(warehouse, archive.open(), night.district, [night.date]) as duck:
        plan = plan_night(duck, backend, night.district, night.date, thresholds)
        verdict = plan.verdict
        if verdict.holds and release is None and thresholds.hold == "all":
            # Record the held night (the same locked computation the apply step would do; writes no rows).
            load_night(
                duck, backend, night.district, night.date, run_id=context.run.run_id, thresholds=thresholds
            )
            _record_held(context, districts, night, verdict, "lms_change_plan")
    counts = plan.changes.counts()
    check_metadata: dict[str, object] = {
        "verdict": verdict.describe(),
        "breaches": MetadataValue.json([b.to_json() for b in verdict.breaches]),
        "hold_mode": thresholds.hold,
    }
    if verdict.holds:
        check_metadata["how_to_release"] = release_instructions(night)
    if release and verdict.holds:
        check_metadata["released_by"] = release.by
        check_metadata["release_reason"] = release.reason
    passed = not verdict.holds or release is not None
    description = (
        verdict.describe()
        if passed
        else f"HELD: {verdict.describe()}. {release_instructions(night)}"
        if thresholds.hold == "all"
        else f"Deactivations held: {verdict.describe()}. {release_instructions(night)}"
    )
    check = AssetCheckResult(
        check_name=CHECK_NAME,
        passed=passed,
        severity=AssetCheckSeverity.ERROR if thresholds.hold == "all" else AssetCheckSeverity.WARN,
        metadata=check_metadata,
        description=description,
    )
    context.log.info(f"{night}: {plan.changes.writes} LMS rows would change; {verdict.describe()}")
    yield MaterializeResult(
        metadata={
            "lms": backend.masked_url,
            "counts": MetadataValue.json(counts),
            "writes": plan.changes.writes,
            "held_rows": plan.changes.held(),
            "verdict": verdict.describe(),
            # the night's state as this step leaves it (etl_project/registry/nights.py)
            "night_state": "held"
            if verdict.holds and release is None and thresholds.hold == "all"
            else "running",
            "samples": MetadataValue.json({k: v for k, v in plan.samples.items() if v}),
        },
        check_results=[check],
    )


def _entity_spec(entity) -> AssetSpec:
    deps = [CHANGE_PLAN, oneroster(entity.source)] + ([oneroster("roles")] if entity.name == "users" else [])
    return AssetSpec(
        lms_key(entity.name),
        deps=deps,
        group_name="lms",
        kinds={_KIND},
        owners=OWNERS,
        description=entity.description + " Loaded into the LMS (never hard-deleted).",
        metadata={
            "dagster/table_name": f"lms.{entity.name}",
            "dagster/column_schema": column_schema(entity),
            "dagster/column_lineage": _lineage(entity.name),
        },
    )


_TYPES = {"text": "string", "date": "date", "bool": "boolean", "int": "int"}


def column_schema(entity: Entity) -> TableSchema:
    """The LMS table's columns; each mapped column says which OneRoster column(s) it comes from."""
    lineage = column_lineage()[entity.name]

    def origin(column: str) -> str:
        return "from OneRoster " + " + ".join(f"{t}.{c}" for t, c in lineage[column])

    return TableSchema(
        columns=[
            TableColumn("id", "int", description="the LMS's own id (never reused)"),
            TableColumn("district", "string", description="the district id (the partition's district)"),
            TableColumn("sourced_id", "string", description=origin("sourced_id")),
            *(TableColumn(f.name, _TYPES[f.kind], description=origin(f.name)) for f in entity.fields),
            TableColumn("active", "boolean", description=origin("active") + " (tobedeleted -> false)"),
            TableColumn("deactivated_at", "timestamp", description="when the record was deactivated"),
            TableColumn("created_at", "timestamp"),
            TableColumn("updated_at", "timestamp"),
        ]
    )


def _lineage(entity: str) -> TableColumnLineage:
    return TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(asset_key=oneroster(t), column_name=c) for t, c in sources]
            for column, sources in column_lineage()[entity].items()
        }
    )


@multi_asset(
    specs=[_entity_spec(e) for e in ENTITIES],
    partitions_def=district_nights,
    can_subset=False,
)
def lms_entities(
    context: AssetExecutionContext,
    config: LmsRunConfig,
    lms: LmsResource,
    warehouse: WarehouseResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
):
    claim_run(context)
    night = DistrictNight.of(context.partition_key)
    thresholds = _thresholds(districts, night.district)
    release = _release(context, config)
    with read_nights(warehouse, archive.open(), night.district, [night.date]) as duck:
        result = load_night(
            duck,
            lms.backend(),
            night.district,
            night.date,
            run_id=context.run.run_id,
            thresholds=thresholds,
            release=release,
        )
    _record_result(context, districts, night, result, thresholds)
    if result.state == "held" and thresholds.hold == "all":  # the LMS changed since the plan was checked
        raise Failure(
            description=f"{night}: HELD, nothing applied: {result.verdict.describe()}. "
            + release_instructions(night)
        )
    context.log.info(
        f"{night}: LMS {result.state}: {result.rows_written} rows written"
        + (f", ledger {result.ledger_first}..{result.ledger_last}" if result.ledger_first else "")
    )
    for e in ENTITIES:
        changes = result.changes.entities[e.name]
        written = result.written.get(e.name, {})
        metadata: dict[str, object] = {
            "state": result.state,
            "night_state": "applied" if result.state == "unchanged" else result.state,
            "mode": changes.mode,
            **{op: written.get(op, 0) for op in OPERATIONS},
            "unchanged": changes.counts.get("unchanged", 0),
            "held_rows": changes.counts.get("held", 0),
            "lms_rows_before": changes.size,
            # Narrow rows read back from the LMS: all of the district's.
            "lms_rows_read_back": changes.read_back,
            "sync_run_id": result.sync_run_id or 0,
            "ledger_first": result.ledger_first or 0,
            "ledger_last": result.ledger_last or 0,
            "dagster/column_lineage": _lineage(e.name),
            "dagster/column_schema": column_schema(e),
        }
        if result.state == "held":
            metadata["not_applied"] = MetadataValue.json(
                {op: changes.counts.get(op, 0) for op in result.verdict.held_operations()}
            )
        if result.released_by:
            metadata["released_by"] = result.released_by
            metadata["release_reason"] = result.release_reason or ""
        yield MaterializeResult(asset_key=lms_key(e.name), metadata=metadata)
