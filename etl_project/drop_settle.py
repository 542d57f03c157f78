"""How long a run's fetch step still waits for its drop to settle, given what the new-drop sensor saw.

A drop is taken only once two listings taken ``settle_seconds`` apart show the same files, sizes and mtimes.
The new-drop sensor already lists the drop: its run carries the drop's fingerprint and the time the sensor
saw it (``STABLE_SINCE_TAG``, epoch seconds). When the fetch step's own first listing has the same
fingerprint, the drop has not changed since then, so the step waits only what is left of the window: nothing
when the sensor saw it ``settle_seconds`` ago or more (a ``new_drop`` run: two polls already agreed), the rest
for a ``first_sync`` run started at once. A run without these tags (``etl-project sync``, Sync now, the
schedule) or whose drop changed since waits the whole window.
"""

from __future__ import annotations

from collections.abc import Mapping

#: the (shortened) fingerprint of the drop the sensor requested the run for
FINGERPRINT_TAG = "etl_project/drop_fingerprint"
#: epoch seconds at which the sensor listed the drop with that fingerprint (after its listing ended)
STABLE_SINCE_TAG = "etl_project/drop_stable_since"
FINGERPRINT_CHARS = 24


def short(fingerprint: str) -> str:
    return fingerprint[:FINGERPRINT_CHARS]


def stable_since_tags(fingerprint: str, seen_at: float) -> dict[str, str]:
    """The run tags for a drop the sensor listed with ``fingerprint`` at ``seen_at`` (epoch seconds)."""
    return {FINGERPRINT_TAG: short(fingerprint), STABLE_SINCE_TAG: f"{seen_at:.3f}"}


def remaining_settle_seconds(
    tags: Mapping[str, str], fingerprint: str, settle_seconds: float, now: float
) -> float:
    """Seconds still to wait for a drop listed now with ``fingerprint``: the whole window unless the run's
    tags prove the same drop was seen earlier, then the part of the window not yet elapsed."""
    since = tags.get(STABLE_SINCE_TAG, "")
    if tags.get(FINGERPRINT_TAG) != short(fingerprint):
        return settle_seconds
    try:
        elapsed = now - float(since)
    except ValueError:
        return settle_seconds
    if elapsed < 0:  # a clock step backwards: prove nothing
        return settle_seconds
    return max(0.0, settle_seconds - elapsed)
