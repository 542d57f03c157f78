"""Loading each night's roster into the LMS: schema, mapping, change sets, thresholds, backends, ledger."""

from etl_project.lms.backend import LmsBackend, LmsConfigError, mask_url
from etl_project.lms.changeset import ChangeSet, EntityChanges, build_changeset
from etl_project.lms.connect import open_backend
from etl_project.lms.load import LoadResult, Plan, Release, load_night, plan_night
from etl_project.lms.thresholds import ThresholdConfigError, Thresholds, Verdict

__all__ = [
    "ChangeSet",
    "EntityChanges",
    "LmsBackend",
    "LmsConfigError",
    "LoadResult",
    "Plan",
    "Release",
    "ThresholdConfigError",
    "Thresholds",
    "Verdict",
    "build_changeset",
    "load_night",
    "mask_url",
    "open_backend",
    "plan_night",
]
