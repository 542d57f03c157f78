"""Asset keys, named once: the key prefix says where the data lives, the group says which stage it is."""

from dagster import AssetKey

OWNERS = ["team:roster-sync"]

DROP = AssetKey(["raw", "oneroster_drop"])
SNAPSHOT = AssetKey(["archive", "oneroster_snapshot"])


def oneroster(table: str) -> AssetKey:
    return AssetKey(["oneroster", table])
