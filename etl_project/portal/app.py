"""The portal's Starlette application: the stores over the registry, the routes, the security headers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from etl_project.portal import (
    routes_auth,
    routes_dashboard,
    routes_district,
    routes_new_district,
    routes_onboarding,
    routes_operator,
    routes_sync,
)
from etl_project.portal.accounts import Accounts
from etl_project.portal.audit import AuditLog
from etl_project.portal.config import PortalConfig
from etl_project.portal.headers import SecurityHeaders
from etl_project.portal.housekeeping import Housekeeping
from etl_project.portal.links import Links
from etl_project.portal.mailer import LinkMailer
from etl_project.portal.rate_limits import RateLimits
from etl_project.portal.sessions import Sessions
from etl_project.portal.throttle import Throttle
from etl_project.portal.web import TEMPLATES, Portal
from etl_project.registry.crypto import SecretBox
from etl_project.registry.db import Database
from etl_project.registry.leases import Leases
from etl_project.registry.nights import NightStates
from etl_project.registry.store import Registry

STATIC = Path(__file__).with_name("static")


def build_portal(config: PortalConfig, registry_url: str, env: Mapping[str, str] | None = None) -> Portal:
    """The portal's stores over the registry at ``registry_url`` (SecretBox.from_env: the TOTP secrets are
    encrypted with ``ETL_PROJECT_SECRET_KEY``, like district credentials)."""
    db = Database(registry_url)
    sessions, throttle, rate_limits = Sessions(db), Throttle(db), RateLimits(db)
    return Portal(
        config=config,
        accounts=Accounts(db, SecretBox.from_env(env)),
        sessions=sessions,
        links=Links(db),
        throttle=throttle,
        rate_limits=rate_limits,
        housekeeping=Housekeeping(db, sessions, throttle, rate_limits),
        leases=Leases(db),
        audit=AuditLog(db),
        mailer=LinkMailer(env),
        registry=Registry(registry_url, env),
        nights=NightStates(registry_url),
        templates=Jinja2Templates(env=Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)),
    )


def create_app(portal: Portal) -> Starlette:
    routes = [
        *routes_auth.ROUTES,
        *routes_new_district.ROUTES,  # before /operator/districts/{action}
        *routes_operator.ROUTES,
        *routes_district.ROUTES,
        *routes_dashboard.ROUTES,
        *routes_sync.ROUTES,
        *routes_onboarding.ROUTES,
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, https=portal.config.secure)])
    app.state.portal = portal
    return app
