"""What the Dagster UI shows about the definitions: descriptions render as written, kinds say what is used."""

from __future__ import annotations

import re

import pytest

from etl_project.assets.keys import SNAPSHOT
from etl_project.definitions import build_defs, defs
from etl_project.settings import Settings

# The UI renders descriptions as Markdown with HTML: a bare <word> is taken as a tag and disappears.
BARE_TAG = re.compile(r"<[A-Za-z/][^<>]*>")


def outside_backticks(text: str | None) -> str:
    return re.sub(r"`[^`]*`", "", text or "")


def described_definitions():
    graph = defs.resolve_asset_graph()
    for spec in defs.resolve_all_asset_specs():
        yield f"asset {spec.key.to_user_string()}", spec.description
    for key in graph.asset_check_keys:
        yield f"check {key.name} on {key.asset_key.to_user_string()}", graph.get_check_spec(key).description
    for job in defs.resolve_all_job_defs():
        yield f"job {job.name}", job.description


def test_no_description_holds_a_bare_tag_outside_backticks():
    found = {what: BARE_TAG.findall(outside_backticks(text)) for what, text in described_definitions()}
    assert {what: tags for what, tags in found.items() if tags} == {}
    snapshot = next(
        text for what, text in described_definitions() if what == "asset archive/oneroster_snapshot"
    )
    assert "`district={district}/date={night}/`" in snapshot


@pytest.mark.parametrize(
    ("archive", "kind", "not_kind"),
    [("s3://roster-archive/prefix", "s3", "local"), ("/srv/etl/archive", "local", "s3")],
)
def test_the_archive_kind_follows_the_archive_in_use(archive, kind, not_kind):
    settings = Settings.from_env({"ETL_PROJECT_HOME": "/srv/etl", "ETL_PROJECT_ARCHIVE": archive})
    (spec,) = [s for s in build_defs(settings).resolve_all_asset_specs() if s.key == SNAPSHOT]
    assert kind in spec.kinds and not_kind not in spec.kinds
