"""Each night's drops, generated ahead (not measured) and published at once, as a SIS export finishing.

A district's folder holds dated drop folders (``<folder>/<YYYY-MM-DD>/``), as the sensor expects. Drops are
generated into a staging folder first and published with one rename each, so the moment a drop is complete
is known exactly (``published``), and generating them takes nothing from the runs being measured.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from etl_project.generate import generate_drop
from etl_project.soak.fleet import BROKEN_DROP, SoakDistrict

BROKEN_USERS = "sourcedId,garbage\n\x00broken row\n"  # unreadable: users.csv is rejected as a whole


def district_folder(root: Path, did: str) -> Path:
    return root / "drops" / did


def stage_night(root: Path, district: SoakDistrict, night: int, date: str, seed: int) -> Path:
    """Generate the district's drop for ``night`` (1 or 2) under ``root/staging``; returns its folder."""
    staged = root / "staging" / district.id / date
    generate_drop(staged, district.students, day=night, seed=seed, district_id=district.id)
    if district.kind == BROKEN_DROP and night == 2:
        (staged / "users.csv").write_text(BROKEN_USERS)
    return staged


def publish(root: Path, district: SoakDistrict, date: str) -> float:
    """Move the staged drop into the district's folder in one rename; returns when it became complete."""
    target = district_folder(root, district.id) / date
    target.parent.mkdir(parents=True, exist_ok=True)
    (root / "staging" / district.id / date).rename(target)
    return time.time()


def remove_staging(root: Path) -> None:
    shutil.rmtree(root / "staging", ignore_errors=True)
