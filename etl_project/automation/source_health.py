"""Is each district's source reachable? The new-drop sensor's polls, as an asset check in the Dagster UI.

The check ``source_reachable`` hangs off ``raw/oneroster_drop``. The new-drop sensor reports it with
``SensorResult(asset_events=[AssetCheckEvaluation(...)])``: failed (ERROR) with the one-sentence reason when a
district's source cannot be reached (server down, login refused, host key changed, no secret key to open the
stored credentials), passed when it can. No run per poll.

Why unpartitioned, with the district in the description and the metadata: Dagster 1.13 stores a run-less
check evaluation under a unique (check, run_id '', partition) row, so a check partitioned by district-night
could take one sensor verdict per night and never the change back to healthy. The check's status in the UI is
its latest evaluation, so a tick's evaluations go passes first, failures last, and while any enabled
district is unreachable a tick that reports anything ends with a failing one: the check is red while any
source is down, and each evaluation says which district and how many are down.

What is reported, to keep the event log small with thousands of districts: a district's health when it
changes (or is first known), and a still-unreachable district again once an hour. A steadily reachable
district is not repeated; ``etl-project status`` shows every district's newest poll.

Executed by hand from the UI, the check rolls up the newest recorded poll of every enabled district.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    asset_check,
)

from etl_project.assets.keys import DROP
from etl_project.automation.sync_status import night_states_for
from etl_project.districts.resource import DistrictsResource

CHECK_NAME = "source_reachable"
CHECK_KEY = AssetCheckKey(DROP, CHECK_NAME)
REPEAT_UNREACHABLE_SECONDS = 3600.0
LISTED_IN_ROLL_UP = 20


@dataclass(frozen=True)
class Health:
    """One district's health as last reported to the UI (kept in the new-drop sensor's cursor)."""

    reachable: bool
    reason: str = ""  # one sentence, never a secret; empty when reachable
    reported_at: float = 0.0  # epoch seconds of the report

    def to_json(self) -> dict[str, object]:
        return {"ok": self.reachable, "why": self.reason, "at": self.reported_at}

    @classmethod
    def from_json(cls, raw: object) -> Health | None:
        if not isinstance(raw, Mapping):
            return None
        return cls(bool(raw.get("ok")), str(raw.get("why") or ""), float(raw.get("at") or 0.0))


def _evaluation(district: str, health: Health, down: int, enabled: int) -> AssetCheckEvaluation:
    if health.reachable:
        description = f"District {district}: source reachable"
    else:
        description = f"District {district}: source unreachable: {health.reason}"
    return AssetCheckEvaluation(
        asset_key=DROP,
        check_name=CHECK_NAME,
        passed=health.reachable,
        severity=AssetCheckSeverity.ERROR,
        description=f"{description} ({down} of {enabled} enabled district(s) unreachable)",
        metadata={
            "district": district,
            "reachable": health.reachable,
            "reason": health.reason,
            "unreachable_districts": down,
            "enabled_districts": enabled,
        },
    )


def health_events(
    polled: Mapping[str, Health],
    reported: MutableMapping[str, Health],
    enabled: Iterable[str],
    now: float,
) -> list[AssetCheckEvaluation]:
    """The evaluations to report for this tick's ``polled`` districts; updates ``reported`` (the cursor's)."""
    enabled = set(enabled)
    for did in list(reported):
        if did not in enabled:
            del reported[did]
    due: dict[str, Health] = {}
    for did, health in sorted(polled.items()):
        last = reported.get(did)
        changed = last is None or last.reachable != health.reachable
        repeat = last is not None and now - last.reported_at >= REPEAT_UNREACHABLE_SECONDS
        if changed or (repeat and not health.reachable):
            due[did] = Health(health.reachable, health.reason, now)
    if not due:
        return []
    reported.update(due)
    down = sorted(did for did, h in reported.items() if not h.reachable)
    order = sorted(due, key=lambda did: (not due[did].reachable, did))
    if down and due[order[-1]].reachable:  # keep the check red while any source is down
        order.append(down[0])
    return [_evaluation(did, reported[did], len(down), len(enabled)) for did in order]


@asset_check(
    asset=DROP,
    name=CHECK_NAME,
    description="The district's source (SFTP server, REST API, folder) answered the new-drop sensor's newest "
    "poll. Reported by new_drop_sensor per district (the district is in the metadata) on each change and "
    "hourly while unreachable; run by hand, it rolls up every enabled district's newest recorded poll. See "
    "etl_project/automation/source_health.py and `etl-project status`.",
)
def source_reachable(districts: DistrictsResource) -> AssetCheckResult:
    polls = night_states_for(districts).polls()
    enabled = sorted(districts.active())
    down = {did: polls[did].last_error for did in enabled if did in polls and not polls[did].reachable}
    listed = "; ".join(f"{did}: {why}" for did, why in list(down.items())[:LISTED_IN_ROLL_UP])
    description = (
        f"{len(down)} of {len(enabled)} enabled district(s) unreachable at their newest poll: {listed}"
        if down
        else f"every polled source of the {len(enabled)} enabled district(s) answered its newest poll"
    )
    return AssetCheckResult(
        passed=not down,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "unreachable_districts": len(down),
            "enabled_districts": len(enabled),
            "never_polled": len([did for did in enabled if did not in polls]),
        },
    )
