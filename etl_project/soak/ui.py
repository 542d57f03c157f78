"""The Dagster UI's GraphQL latency (partition and asset pages) and the new-drop sensor's tick durations.

The queries are package data (``queries/*.graphql``): what the UI's Partitions tab, a selected partition and
the asset's Overview page request. Each is sent ``repeat`` times to the webserver, one after another, and
timed end to end (request to parsed response)."""

from __future__ import annotations

import json
import time
import urllib.request
from importlib.resources import files

from etl_project.soak.observe import percentile

SENSOR = "new_drop_sensor"
PAGES = {
    "partition_page": ("partition_health", ["lms", "users"]),
    "asset_page": ("asset_page", ["lms", "users"]),
}


def query_text(name: str) -> str:
    return files("etl_project.soak").joinpath("queries", f"{name}.graphql").read_text()


def graphql(url: str, query: str, variables: dict[str, object] | None = None, timeout: float = 300) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url + "/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        data = json.loads(resp.read())
    if data.get("errors"):
        raise RuntimeError(f"GraphQL errors: {data['errors'][:2]}")
    return data["data"]


def timed_queries(url: str, query: str, variables: dict[str, object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        graphql(url, query, variables)
        seconds.append(time.perf_counter() - started)
    return seconds


def page_latency(url: str, partition: str, repeat: int = 10) -> dict[str, object]:
    """``<page>_p50_s`` / ``<page>_p95_s`` for the partition page, one partition, and the asset page."""
    out: dict[str, object] = {}
    for page, (name, path) in PAGES.items():
        seconds = timed_queries(url, query_text(name), {"assetKey": {"path": path}}, repeat)
        out[f"{page}_p50_s"], out[f"{page}_p95_s"] = percentile(seconds, 50), percentile(seconds, 95)
    variables = {"assetKey": {"path": ["lms", "users"]}, "partitions": [partition]}
    seconds = timed_queries(url, query_text("asset_partition"), variables, repeat)
    out["partition_detail_p50_s"] = percentile(seconds, 50)
    out["partition_detail_p95_s"] = percentile(seconds, 95)
    return out


def repository_selector(url: str) -> dict[str, str]:
    """The code location and repository that serve the project (the one with the new-drop sensor)."""
    for repo in graphql(url, query_text("locations"))["repositoriesOrError"]["nodes"]:
        if any(s["name"] == SENSOR for s in repo["sensors"]):
            return {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}
    raise RuntimeError(f"no code location serves the sensor {SENSOR}")


def sensor_ticks(url: str, since: float, limit: int = 1000) -> list[float]:
    """Durations (s) of the sensor's finished ticks that started at or after ``since`` (epoch seconds)."""
    variables = {"selector": {**repository_selector(url), "sensorName": SENSOR}, "limit": limit}
    data = graphql(url, query_text("sensor_ticks"), variables)["sensorOrError"]
    ticks = data["sensorState"]["ticks"]
    return [
        t["endTimestamp"] - t["timestamp"] for t in ticks if t["endTimestamp"] and t["timestamp"] >= since
    ]
