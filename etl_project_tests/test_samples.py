"""Every public sample set in shared/oneroster-samples through ``check-drop``, with its expected outcome."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from etl_project.cli.main import main


def samples_root() -> Path:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "oneroster-samples"]
    if os.environ.get("ETL_PROJECT_SAMPLES"):
        candidates.append(Path(os.environ["ETL_PROJECT_SAMPLES"]))
    candidates.append(Path("/work/shared/oneroster-samples"))
    for candidate in candidates:
        if (candidate / "SOURCES.md").exists():
            return candidate
    raise AssertionError(f"OneRoster samples not found (looked in {', '.join(map(str, candidates))})")


ROOT = samples_root()
CATALYST = "catalyst-moodle-enrol_oneroster"


def run(capsys, path: Path) -> tuple[int, dict]:
    code = main(["check-drop", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def codes(result: dict, file: str) -> set[str]:
    return {e["code"] for e in result["files"][file]["errors"]}


def counts(result: dict, file: str) -> tuple[int, int, int]:
    f = result["files"][file]
    return f["rows"], f["accepted"], f["rejected"]


@pytest.mark.parametrize(
    "path",
    [
        "edfi-lms-toolkit/oneroster-1.1-sample-data",
        "lepo-project-roster-hub/en",
        "lepo-project-roster-hub/en/oneroster.zip",
        "lepo-project-roster-hub/ja",
        "lepo-project-roster-hub/ja/oneroster.zip",
        f"{CATALYST}/Test_full_data_set.zip",
        f"{CATALYST}/unzipped/Test_full_data_set",
        f"{CATALYST}/Test_minimal_data_set.zip",
        f"{CATALYST}/oneroster_test_data.zip",
    ],
)
def test_clean_samples(capsys, path):
    """Valid (if quirky) sets load completely: metadata columns, quoting, bulk-with-status, 1.2 delta."""
    code, result = run(capsys, ROOT / path)
    assert code == 0, result
    assert all(f["status"] in ("loaded", "absent") for f in result["files"].values())
    assert all(f["rejected"] == 0 for f in result["files"].values())


def test_edfi_11_counts(capsys):
    _, result = run(capsys, ROOT / "edfi-lms-toolkit/oneroster-1.1-sample-data")
    assert result["oneroster_version"] == "1.1"
    assert counts(result, "users.csv") == (10, 10, 0)
    assert counts(result, "enrollments.csv") == (24, 24, 0)
    assert counts(result, "demographics.csv") == (8, 8, 0)


def test_roster_hub_typo_manifest_row_is_a_warning(capsys):
    code, result = run(capsys, ROOT / "lepo-project-roster-hub/ja/oneroster.zip")
    assert (
        code == 0
        and counts(result, "users.csv") == (20, 20, 0)
        and counts(result, "enrollments.csv") == (30, 30, 0)
    )
    assert any("fiel.demographics" in w for w in result["warnings"])


def test_catalyst_12_delta(capsys):
    _, result = run(capsys, ROOT / CATALYST / "oneroster_test_data.zip")
    assert result["oneroster_version"] == "1.2"
    assert {f: result["files"][f]["mode"] for f in ("users.csv", "roles.csv", "userProfiles.csv")} == {
        "users.csv": "delta",
        "roles.csv": "delta",
        "userProfiles.csv": "delta",
    }


def test_edfi_10_refused(capsys):
    code, result = run(capsys, ROOT / "edfi-lms-toolkit/oneroster-1.0-sample-data")
    assert code == 2 and result["oneroster_version"] is None
    assert "1.0" in result["drop_errors"][0]


@pytest.mark.parametrize("path", [f"{CATALYST}/test01.zip", f"{CATALYST}/unzipped/test01"])
def test_catalyst_test01_dmy_dates_and_dangling_class(capsys, path):
    code, result = run(capsys, ROOT / path)
    assert code == 1
    assert counts(result, "academicSessions.csv") == (2, 0, 2) and codes(result, "academicSessions.csv") == {
        "bad_date"
    }
    assert codes(result, "classes.csv") == {"parent_rejected"}  # their term was rejected
    assert codes(result, "enrollments.csv") == {
        "bad_date",
        "unknown_reference",
    }  # datetime in a date column; cls-222-12345
    assert counts(result, "users.csv") == (3, 3, 0) and counts(result, "orgs.csv") == (3, 3, 0)


@pytest.mark.parametrize(
    "path", [f"{CATALYST}/v1p2_full_dataset.zip", f"{CATALYST}/older-commit-3613f7c/v1p2_full_dataset.zip"]
)
def test_catalyst_v1p2_broken_headers(capsys, path):
    code, result = run(capsys, ROOT / path)
    assert code == 1 and result["oneroster_version"] == "1.2"
    # userprofiles.csv holds roles data and its manifest row is empty: one manifest_mismatch for the file
    assert result["files"]["userProfiles.csv"]["status"] == "rejected"
    assert codes(result, "userProfiles.csv") == {"manifest_mismatch"}
    # users' dateLastModified 1/05/2023 and 15/06/2023 in a bulk file: oneroster.md §3 says a bulk file leaves
    # dateLastModified empty and the bulk load never uses it, so the values are dropped with a warning; the
    # old verdict (5 users rejected, their enrollments parent_rejected) lost valid rows for an ignored field
    assert counts(result, "users.csv") == (6, 6, 0) and codes(result, "users.csv") == set()
    assert any(w.startswith("users.csv line 7, column dateLastModified") for w in result["warnings"])
    assert counts(result, "enrollments.csv") == (6, 6, 0)
    assert counts(result, "classes.csv") == (2, 2, 0)  # courses absent: courseSourcedId not checked
    assert any("prefferedGivenName" in w for w in result["warnings"])
    if "older-commit" in path:
        assert any("Test_full_data_set" in w for w in result["warnings"])


def test_oat_sa_mixed_10_11_headers(capsys):
    code, result = run(capsys, ROOT / "oat-sa-oneroster-import/OneRosterv1p1BaseCSV")
    assert code == 1
    assert result["files"]["academicSessions.csv"]["status"] == "rejected"
    assert codes(result, "academicSessions.csv") == {"missing_column"}  # no schoolYear column
    # orgs dateLastModified "2017-05-06 08:01:05" in a bulk file: dropped with a warning, the org kept
    # (oneroster.md §3: bulk files leave it empty); the old verdict rejected the org and, through it, user1
    assert codes(result, "orgs.csv") == set() and counts(result, "orgs.csv") == (2, 2, 0)
    assert any(w.startswith("orgs.csv line 2, column dateLastModified") for w in result["warnings"])
    assert counts(result, "users.csv") == (2, 2, 0)
    # classes: empty courseSourcedId, and every term reference held because academicSessions.csv (bulk) was
    # rejected as a whole (oneroster.md §3: a bulk set must be self-consistent)
    assert codes(result, "classes.csv") == {"required_missing", "parent_rejected"}
    assert counts(result, "courses.csv") == (0, 0, 0) and result["files"]["courses.csv"]["status"] == "loaded"
    assert any("ext_tao_userMotherName" in w for w in result["warnings"])


def test_classlink_templates_header_only(capsys):
    code, result = run(capsys, ROOT / "nicelion-oneroster-ts-classlink-templates")
    assert code == 1  # demographics.csv is in the folder but the manifest says absent
    assert result["files"]["demographics.csv"]["status"] == "rejected"
    for file in ("orgs.csv", "users.csv", "classes.csv", "enrollments.csv"):
        assert result["files"][file]["status"] == "loaded" and counts(result, file) == (0, 0, 0)
