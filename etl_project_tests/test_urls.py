"""``mask_url``: the one helper the registry and the LMS backends print database URLs through."""

from __future__ import annotations

import pytest

from etl_project.lms import mask_url as lms_mask_url
from etl_project.registry import mask_url as registry_mask_url
from etl_project.urls import mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://etl:s3cret@db:5432/reg", "postgresql://etl:***@db:5432/reg"),
        ("postgresql://etl:p@ss:w0rd@db/lms", "postgresql://etl:***@db/lms"),  # '@' inside the password
        ("postgresql://etl@db/lms", "postgresql://etl@db/lms"),
        ("sqlite:///x/registry.sqlite", "sqlite:///x/registry.sqlite"),
        ("postgresql://etl:s3cret@[::1/lms", "<unparsable URL>"),
    ],
)
def test_mask_url_hides_every_part_of_the_password(url, masked):
    assert mask_url(url) == masked
    assert lms_mask_url(url) == registry_mask_url(url) == masked
