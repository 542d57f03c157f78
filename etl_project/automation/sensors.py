"""The new-drop sensor: one run per complete, new drop, for every enabled district, within a time budget.

Each tick:

1. **Registers districts.** Enabled districts with a source (``DistrictsResource.active()``) not yet in
   the ``districts`` dynamic partitions are added with one deduplicated ``AddDynamicPartitionsRequest``, so a
   newly registered district gets its partitions from the daemon, with no button to press.
2. **Polls sources concurrently.** Every enabled district's source is listed (``list_drops``) on a bounded
   thread pool, with a per-connection timeout, until the tick's budget runs out (well under Dagster's 60 s
   sensor timeout). Districts are polled oldest-poll-first, so districts not reached within the budget are
   polled first next tick (round-robin, resumed from the cursor). A district that is unreachable, refuses our
   credentials or shows a changed host key is reported in the tick's log and never blocks the others.
   Disabled districts are neither polled nor run.
   Every poll is recorded in the registry (``NightStates.record_poll``: the newest complete drop's night, or
   the one-sentence, secret-free error), which ``etl-project status`` reads, and each district's health is
   reported to the UI as the ``source_reachable`` asset check (see ``etl_project.automation.source_health``).
3. **Takes complete, new drops.** ``list_drops`` already refuses drops without ``manifest.csv``, with a file
   the manifest lists missing, or with an upload in progress (``.filepart``, ``.part``, rsync dot-files). On
   top, a drop is taken only when its fingerprint (name, size, mtime of every file) is the same as at the
   **previous poll** (kept per district in the cursor), so a drop is taken one poll interval after it stops
   changing and the sensor never sleeps. One run per drop: ``run_key = "<district>:<fingerprint>"``, so the
   same drop never runs twice (even if the cursor is reset) and a re-uploaded, changed drop runs again.
   Which night a drop is for: see ``etl_project.automation.nights`` (date in the name, else noon-to-noon
   local time).
   Only drops of the last ``RECENT_NIGHTS`` nights are considered: older nights are for a backfill.
   A night already synced by another path (``etl-project sync``, the demo) is not run again because the
   sensor sees its drop for the first time: the drop asset materialized from the same drop, or a night state
   other than failed/missing, marks the drop taken instead (see ``sync_status.already_synced``). While a
   run of the night from another trigger (the nightly schedule) is queued or running, the drop waits for the
   next tick: both would otherwise sync the same night under different run keys.
4. **First sync at once.** A district the cursor has never polled successfully (a new registration) gets
   a run for its newest complete drop in the same tick, without waiting a poll interval (the fetch step's
   own settle check still guards a drop that is still moving); its older drops are marked seen, not
   backfilled.
5. **No second settle wait.** Each run carries the drop's fingerprint and the time the sensor saw it
   (``etl_project.drop_settle``): the fetch step waits only what is left of its settle window, nothing for
   a ``new_drop`` run (two polls a full interval apart already agreed).

``minimum_interval_seconds=120``: a drop is taken 2-4 minutes after its upload finishes (two polls must
agree), and 200 districts cost under two SFTP logins a second; a shorter interval mostly adds logins to
district servers. ``default_status=RUNNING``: onboarding must work without anyone toggling the sensor
in the UI; the sensor is idempotent (run keys) and cheap when nothing changed.
"""

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from etl_project.automation.nights import is_recent, night_of_listing
from etl_project.automation.source_health import Health, health_events
from etl_project.automation.sync_status import (
    TRIGGER_TAG,
    already_synced,
    drop_run_key,
    night_states_for,
    run_in_flight,
)
from etl_project.districts import District
from etl_project.districts.resource import DistrictsResource
from etl_project.drop_settle import short, stable_since_tags
from etl_project.jobs import nightly_sync
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight, districts_partitions
from etl_project.registry import SECRET_KEY_ENV, SecretKeyError
from etl_project.registry.nights import NightStates
from etl_project.sources import DropListing, SftpDropSource, SourceError, open_source

TICK_BUDGET_SECONDS = 40.0
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_WORKERS = 16
MINIMUM_INTERVAL_SECONDS = 120
RECENT_NIGHTS = 7
TAKEN_KEPT = 32  # fingerprints remembered per district (run keys dedupe forever; this only saves requests)
CURSOR_VERSION = 1
FETCH_STEP = "fetch_and_archive_drop"


# ------------------------------------------------------------------------------------------------ cursor


@dataclass
class DistrictCursor:
    seen: dict[str, str] = field(default_factory=dict)  # drop location -> fingerprint at the previous poll
    taken: list[str] = field(default_factory=list)  # fingerprints already requested, newest last
    polled: float = 0.0  # epoch seconds of the last poll attempt (0: never); orders the next tick
    synced_once: bool = False  # polled successfully at least once (else the next success is a first sync)
    health: Health | None = None  # as last reported to the UI (source_reachable)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "seen": self.seen,
            "taken": self.taken,
            "polled": self.polled,
            "synced_once": self.synced_once,
        }
        if self.health is not None:
            body["health"] = self.health.to_json()
        return body

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> "DistrictCursor":
        return cls(
            seen={str(k): str(v) for k, v in dict(raw.get("seen") or {}).items()},
            taken=[str(x) for x in raw.get("taken") or []],
            polled=float(raw.get("polled") or 0.0),
            synced_once=bool(raw.get("synced_once")),
            health=Health.from_json(raw.get("health")),
        )


def load_cursor(raw: str | None) -> dict[str, DistrictCursor]:
    """Per-district state from the sensor cursor; an unreadable or foreign cursor starts afresh."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        if data.get("v") != CURSOR_VERSION:
            return {}
        return {did: DistrictCursor.from_json(st) for did, st in data["districts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def dump_cursor(state: Mapping[str, DistrictCursor]) -> str:
    body = {did: st.to_json() for did, st in sorted(state.items())}
    return json.dumps({"v": CURSOR_VERSION, "districts": body}, separators=(",", ":"), sort_keys=True)


# ------------------------------------------------------------------------------------------------ polling


def poll_district(
    district: District, credentials: Callable[[District], object | None], connect_timeout: float
) -> list[DropListing]:
    """Every complete-looking drop at the district's source (one connection, closed afterwards)."""
    source = open_source(district, credentials(district))
    if isinstance(source, SftpDropSource):
        source.timeout = connect_timeout  # TCP connect, banner and auth each bounded
    with source:
        return source.list_drops()


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description (source errors are written to name user@host:port at most)."""
    if isinstance(exc, SourceError):
        kind = "permanent, fix the district's configuration" if exc.permanent else "will retry next tick"
        return f"{exc} ({kind})"
    if isinstance(exc, SecretKeyError):  # its first sentence says what is wrong; the rest is a how-to
        first = str(exc).split(". ", 1)[0].rstrip(".")
        return f"{first} (fix {SECRET_KEY_ENV} in the Dagster daemon's environment)"
    return f"{type(exc).__name__}: {exc}"


def poll_and_record(
    district: District,
    credentials: Callable[[District], object | None],
    connect_timeout: float,
    states: NightStates,
    unrecorded: list[str],
) -> list[DropListing]:
    """``poll_district``, then its outcome recorded in the registry (a registry failure never fails it)."""
    try:
        listings = poll_district(district, credentials, connect_timeout)
    except Exception as exc:
        record_poll(states, district.id, unrecorded, error=describe_error(exc))
        raise
    newest = max((night_of_listing(district, lst) for lst in listings), default=None)
    record_poll(states, district.id, unrecorded, newest_drop=newest)
    return listings


def record_poll(states: NightStates, did: str, unrecorded: list[str], **outcome: str | None) -> None:
    try:
        states.record_poll(did, **outcome)
    except Exception as exc:  # e.g. the registry database is unreachable: say so in the tick log
        unrecorded.append(f"{did}: {type(exc).__name__}: {exc}")


class InFlight(str):
    """Why a drop is looked at again next tick instead of run now: a run of its night (the schedule's, a
    person's) is queued or running. Once it ends, the drop is synced unless that run took the same drop."""


def _synced_elsewhere(
    instance: DagsterInstance, states: NightStates, did: str, night: str, lst: DropListing
) -> str | None:
    dn = DistrictNight(night, did)
    why = already_synced(instance, states, dn, lst.fingerprint)
    if why is None and (run_id := run_in_flight(instance, dn)) is not None:
        return InFlight(f"run {run_id} of this night is queued or running; looked at again when it ends")
    return why


@dataclass
class TickReport:
    polled: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    over_budget: list[str] = field(default_factory=list)  # still connecting when the budget ran out
    not_reached: list[str] = field(default_factory=list)  # never started this tick; first in line next tick
    waiting: dict[str, list[str]] = field(default_factory=dict)  # drops seen changing or for the first time
    already: dict[str, list[str]] = field(default_factory=dict)  # nights synced by another path: not run
    unrecorded: list[str] = field(default_factory=list)  # polls the registry could not record


class NewDropTick:
    """One evaluation of the sensor; parameters are the sensor's knobs (tests shrink the budget)."""

    def __init__(self, *, budget_seconds: float, connect_timeout: float, max_workers: int):
        self.budget_seconds = budget_seconds
        self.connect_timeout = connect_timeout
        self.max_workers = max_workers

    def evaluate(self, context: SensorEvaluationContext, districts: DistrictsResource) -> SensorResult:
        started = time.monotonic()
        now = dt.datetime.now(dt.UTC)
        state = load_cursor(context.cursor)
        enabled = districts.active()
        registered = set(context.instance.get_dynamic_partitions(DISTRICTS_PARTITION))
        to_register = sorted(set(enabled) - registered)
        state = {did: st for did, st in state.items() if did in enabled}  # forget removed/disabled ones

        def priority(did: str) -> tuple[bool, float, str]:
            st = state.get(did)
            return (st is not None and st.synced_once, st.polled if st else 0.0, did)

        order = sorted(enabled, key=priority)
        report = TickReport()
        states = night_states_for(districts)
        results = self._poll_all([enabled[did] for did in order], districts, states, report)

        run_requests: list[RunRequest] = []
        healths: dict[str, Health] = {}
        for did in order:
            outcome = results.get(did)
            if outcome is None:
                continue
            st = state.setdefault(did, DistrictCursor())
            previous_poll, st.polled = st.polled, time.time()
            if isinstance(outcome, BaseException):
                healths[did] = Health(False, report.unreachable.get(did) or describe_error(outcome))
                continue
            healths[did] = Health(True)
            synced = partial(_synced_elsewhere, context.instance, states, did)
            run_requests += self._take(enabled[did], st, outcome, (now, previous_poll), report, synced)

        reported = {did: st.health for did, st in state.items() if st.health is not None}
        events = health_events(healths, reported, enabled, time.time())
        for did, st in state.items():
            st.health = reported.get(did)
        self._log(context, report, len(enabled), len(run_requests), to_register, time.monotonic() - started)
        summary = (
            f"{len(report.polled)} of {len(enabled)} districts polled, no new complete drop"
            f"{f'; {len(report.unreachable)} unreachable' if report.unreachable else ''}"
        )
        return SensorResult(
            run_requests=run_requests,
            asset_events=events,
            cursor=dump_cursor(state),
            dynamic_partitions_requests=[districts_partitions.build_add_request(to_register)]
            if to_register
            else None,
            skip_reason=None if run_requests else summary,
        )

    # -- polling -------------------------------------------------------------------------------------
    def _poll_all(
        self, ordered: list[District], districts: DistrictsResource, states: NightStates, report: TickReport
    ) -> dict[str, list[DropListing] | BaseException]:
        results: dict[str, list[DropListing] | BaseException] = {}
        if not ordered:
            return results

        def credentials(d: District) -> object | None:
            return districts.credentials(d.id)

        workers = max(1, min(self.max_workers, len(ordered)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="new-drop-poll")
        futures: dict[Future, str] = {
            pool.submit(
                poll_and_record, d, credentials, self.connect_timeout, states, report.unrecorded
            ): d.id
            for d in ordered
        }
        try:
            done, _ = wait(futures, timeout=self.budget_seconds)
        finally:
            # Never wait for a hung server: queued polls are cancelled, running ones end at their timeout.
            pool.shutdown(wait=False, cancel_futures=True)
        for fut, did in futures.items():
            if fut in done and not fut.cancelled():
                exc = fut.exception()
                if exc is not None:
                    results[did] = exc
                    report.unreachable[did] = describe_error(exc)
                else:
                    results[did] = fut.result()
                    report.polled.append(did)
            elif fut.cancelled():
                report.not_reached.append(did)
            else:
                report.over_budget.append(did)
                late = TimeoutError(
                    f"no answer within the tick's {self.budget_seconds:g} s budget (slow or hung server), "
                    "will retry next tick"
                )
                results[did] = late
                record_poll(states, did, report.unrecorded, error=describe_error(late))
        return results

    # -- deciding ------------------------------------------------------------------------------------
    def _take(
        self,
        district: District,
        st: DistrictCursor,
        listings: list[DropListing],
        when: tuple[dt.datetime, float],
        report: TickReport,
        synced: Callable[[str, DropListing], str | None],
    ) -> list[RunRequest]:
        """The runs to request for the district's polled drops; ``when`` is this tick's time and the epoch
        seconds of the district's previous poll (which saw the drops in ``st.seen``)."""
        now, previous_poll = when
        nights = [(night_of_listing(district, lst), lst) for lst in listings]
        recent = [(n, lst) for n, lst in nights if is_recent(district, n, now, RECENT_NIGHTS)]
        previous = st.seen
        st.seen = {lst.location: short(lst.fingerprint) for _, lst in recent}
        first_sync = not st.synced_once
        st.synced_once = True
        requests: dict[str, RunRequest] = {}

        if first_sync:
            if recent:
                # Newest night first; a dated drop wins over the undated one for the same night.
                night, newest = max(recent, key=lambda item: (item[0], item[1].dated))
                why = synced(night, newest)
                if why is None:
                    requests[night] = self._request(district, night, newest, "first_sync", st.polled)
                else:
                    report.already.setdefault(district.id, []).append(f"night {night} {why}")
            st.taken = [short(lst.fingerprint) for _, lst in recent][-TAKEN_KEPT:]
            return list(requests.values())

        for night, lst in sorted(recent, key=lambda item: (item[0], item[1].dated)):
            fp = short(lst.fingerprint)
            if fp in st.taken:
                continue
            if previous.get(lst.location) != fp:
                what = "new" if lst.location not in previous else "changed"
                report.waiting.setdefault(district.id, []).append(
                    f"{lst.location} (night {night}, {what} since the last poll)"
                )
                continue
            why = synced(night, lst)
            if isinstance(why, InFlight):  # not taken: decided when that run has ended
                report.waiting.setdefault(district.id, []).append(f"{lst.location} (night {night}: {why})")
                continue
            if why is None:
                requests[night] = self._request(district, night, lst, "new_drop", previous_poll)
            else:
                report.already.setdefault(district.id, []).append(f"night {night} {why}")
            st.taken.append(fp)
        st.taken = st.taken[-TAKEN_KEPT:]
        return list(requests.values())

    @staticmethod
    def _request(
        district: District, night: str, listing: DropListing, trigger: str, seen_at: float
    ) -> RunRequest:
        """The run for ``listing``, seen unchanged since ``seen_at`` (epoch seconds): its fetch step waits
        only what is left of the settle window (etl_project.drop_settle), nothing after two polls agreed."""
        dn = DistrictNight(night, district.id)
        return RunRequest(
            run_key=drop_run_key(district.id, listing.fingerprint),
            partition_key=dn.key,
            tags={TRIGGER_TAG: trigger, **stable_since_tags(listing.fingerprint, seen_at)},
        )

    # -- reporting -----------------------------------------------------------------------------------
    def _log(
        self,
        context: SensorEvaluationContext,
        report: TickReport,
        enabled: int,
        runs: int,
        registered: list[str],
        elapsed: float,
    ) -> None:
        log = context.log
        if registered:
            log.info(f"Registering {len(registered)} new district(s): {', '.join(registered)}")
        log.info(
            f"Polled {len(report.polled)} of {enabled} enabled districts in {elapsed:.1f} s "
            f"(budget {self.budget_seconds:g} s): {runs} run(s) requested, "
            f"{len(report.unreachable)} unreachable, {len(report.over_budget)} over budget, "
            f"{len(report.not_reached)} not reached (polled first next tick)"
        )
        for did, why in sorted(report.unreachable.items()):
            log.warning(f"District {did} unreachable: {why}")
        for did in report.over_budget:
            log.warning(
                f"District {did}: still polling when the {self.budget_seconds:g} s budget ran out "
                "(slow or hung server); retried next tick"
            )
        if report.not_reached:
            log.warning(
                f"Not reached within the budget, polled first next tick: {', '.join(report.not_reached)}"
            )
        for did, drops in sorted(report.waiting.items()):
            log.info(f"District {did}: waiting for {'; '.join(drops)} to stop changing")
        for did, nights in sorted(report.already.items()):
            log.info(f"District {did}: not run again, {'; '.join(nights)}")
        if report.unrecorded:
            log.error(
                f"Could not record {len(report.unrecorded)} poll(s) in the registry: {report.unrecorded[0]}"
            )


def build_new_drop_sensor(
    *,
    name: str = "new_drop_sensor",
    budget_seconds: float = TICK_BUDGET_SECONDS,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    max_workers: int = MAX_WORKERS,
    minimum_interval_seconds: int = MINIMUM_INTERVAL_SECONDS,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> SensorDefinition:
    tick = NewDropTick(
        budget_seconds=budget_seconds, connect_timeout=connect_timeout, max_workers=max_workers
    )

    @sensor(
        name=name,
        job=nightly_sync,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Registers new districts and starts one nightly_sync run per complete, new drop "
        "(stable across two polls, new fingerprint); see etl_project/automation/sensors.py.",
    )
    def _new_drop_sensor(context: SensorEvaluationContext, districts: DistrictsResource) -> SensorResult:
        return tick.evaluate(context, districts)

    return _new_drop_sensor


new_drop_sensor = build_new_drop_sensor()
