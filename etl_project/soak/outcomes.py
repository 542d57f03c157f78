"""Each soak district's outcome as observed (runs, night states, source polls) against what was injected."""

from __future__ import annotations

from etl_project.registry.nights import NightStates
from etl_project.soak.fleet import FAILURES, REFUSED_LOGIN, UNREACHABLE, SoakDistrict
from etl_project.soak.observe import Key

# What the poll's one-sentence error says for each kind (etl_project/sources/sftp.py).
POLL_ERRORS = {UNREACHABLE: "cannot open an SSH session", REFUSED_LOGIN: "refused the private key"}


def observed(district: SoakDistrict, dates: dict[int, str], states: NightStates, ran: set[Key]) -> bool:
    """Whether the district ended as its kind should: the expected state each night, or no run and a
    poll that failed the way its server fails, for the kinds whose server fails."""
    for night, date in dates.items():
        expected = district.expected(night)
        if expected is None:
            poll = states.poll(district.id)
            if (
                (district.id, date) in ran
                or poll is None
                or POLL_ERRORS[district.kind] not in (poll.last_error or "")
            ):
                return False
            continue
        record = states.get(district.id, date)
        if record is None or str(record.state) != expected:
            return False
    return True


def count_outcomes(fleet: list[SoakDistrict], dates: dict[int, str], ran: set[Key]) -> dict[str, object]:
    """``failures_observed`` per kind, and the districts whose outcome was not the expected one."""
    states = NightStates()
    wrong = [d.id for d in fleet if not observed(d, dates, states, ran)]
    counts = {kind: sum(d.kind == kind and d.id not in wrong for d in fleet) for kind in FAILURES}
    return {"failures_observed": counts, "unexpected_outcomes": wrong}
