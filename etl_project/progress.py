"""One line per step on a terminal: what ``etl-project sync`` shows while a run goes.

``step_lines`` is a Dagster logger: configured in a run's ``loggers`` run config (instead of ``console``), it
prints when each step starts and ends, with its duration, any announced wait (``log_progress``), and on
failure the cause in one sentence. Everything else, stack traces included, stays in the run's event log
(the Dagster UI's run page).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import TextIO

from dagster import DagsterEvent, DagsterEventType, InitLoggerContext, logger

#: a ``context.log`` record carrying this ``extra`` key is shown by ``step_lines`` (e.g. a settle wait).
PROGRESS_EXTRA = "etl_project_progress"
STEP_LINES_LOGGER = "step_lines"
_QUALIFIED_ERROR = re.compile(r"^(?:[A-Za-z_][\w]*\.)+([A-Za-z_]\w*: )")


def log_progress(log: logging.Logger, message: str) -> None:
    """An INFO message the terminal shows too (the run log always keeps it)."""
    log.info(message, extra={PROGRESS_EXTRA: True})


def failure_cause(event: DagsterEvent) -> str:
    """The one-sentence cause of a failed (or retried) step: a ``Failure``'s description, else the error's
    first line without its module path (``SourceConnectionError: cannot open ...``)."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description
    error = getattr(data, "error", None)
    if error is None:
        return "see the run log"
    if error.cls_name == "DagsterAssetCheckFailedError":  # "...:\noneroster/users: file_complete\n"
        checks = [line.strip() for line in (error.message or "").splitlines()[1:] if line.strip()]
        return f"blocked by a failed check ({', '.join(checks) or 'see the run log'}); the LMS is unchanged"
    first = (error.message or "").strip().splitlines()[0] if (error.message or "").strip() else error.cls_name
    return _QUALIFIED_ERROR.sub(r"\1", first or "see the run log")


class StepLines(logging.Handler):
    """Turns Dagster's step events into ``  <step>: started / succeeded in 1.2 s / FAILED after ...``."""

    def __init__(self, stream: TextIO):
        super().__init__(logging.DEBUG)
        self.stream = stream
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event, step = meta.get("dagster_event"), meta.get("step_key")
        if event is None:  # a user message: shown only when marked as progress
            shown = getattr(record, PROGRESS_EXTRA, False) and step
            line = f"{step}: {meta.get('orig_message')}" if shown else None
        else:
            line = self.line(event)
        if line:
            self.stream.write(f"  {line}\n")
            self.stream.flush()

    def line(self, event: DagsterEvent) -> str | None:
        kind = event.event_type
        if kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED):
            self.started[event.step_key] = time.monotonic()
            return f"{event.step_key}: {'started' if kind == DagsterEventType.STEP_START else 'restarted'}"
        took = f"{time.monotonic() - self.started.get(event.step_key, time.monotonic()):.1f} s"
        if kind == DagsterEventType.STEP_SUCCESS:
            return f"{event.step_key}: succeeded in {took}"
        if kind == DagsterEventType.STEP_FAILURE:
            return f"{event.step_key}: FAILED after {took}: {failure_cause(event)}"
        if kind == DagsterEventType.STEP_UP_FOR_RETRY:
            wait = getattr(event.event_specific_data, "seconds_to_wait", None)
            when = f" in {wait:.0f} s" if wait is not None else ""
            return f"{event.step_key}: failed after {took}, retrying{when}: {failure_cause(event)}"
        if kind == DagsterEventType.STEP_SKIPPED:
            return f"{event.step_key}: skipped (an upstream step did not succeed)"
        return None


@logger(description="One line per step start and end, with durations and waits (etl-project sync).")
def step_lines(init_context: InitLoggerContext) -> logging.Logger:
    log = logging.Logger(f"etl_project.step_lines.{init_context.run_id}", logging.DEBUG)
    log.addHandler(StepLines(sys.stdout))
    return log
