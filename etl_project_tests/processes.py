"""Stopping a server the tests started in its own process group (webserver, daemon and their children)."""

from etl_project.devservers.groups import stop_group

__all__ = ["stop_group"]
