"""``ArchiveResource``: the Dagster resource that opens the archive (S3 via dagster-aws, or a folder)."""

from __future__ import annotations

import functools

from dagster import ConfigurableResource
from pydantic import Field

from etl_project.archive.base import Archive, ArchiveError
from etl_project.archive.local import LocalArchive


def open_archive(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    region: str = "us-east-1",
    sse: str = "AES256",
    kms_key_id: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
) -> Archive:
    """``s3://bucket/prefix`` -> S3Archive (client from dagster_aws.s3.S3Resource, one per process and
    settings); else a local folder."""
    if url.startswith("s3://"):
        from etl_project.archive.s3 import S3Archive  # boto3: imported only for an S3 archive

        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ArchiveError(f"archive URL {url!r} names no bucket (expected s3://bucket/prefix)")
        client = _s3_client(s3_endpoint_url, region, aws_access_key_id, aws_secret_access_key)
        return S3Archive(client, bucket, prefix, sse=sse, kms_key_id=kms_key_id)
    if "://" in url and not url.startswith("file://"):
        raise ArchiveError(f"archive URL {url!r}: use s3://bucket/prefix or a local folder")
    return LocalArchive(url.removeprefix("file://"))


@functools.lru_cache(maxsize=8)
def _s3_client(endpoint_url: str | None, region: str, key_id: str | None, secret: str | None):
    """One S3 client per process and settings, shared by every step of every run the process executes.
    Building a client parses botocore's service models (about 0.15 s of CPU); a night opens the archive
    in six steps or more. boto3 clients are thread-safe; credentials from the AWS chain refresh themselves."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(
        endpoint_url=endpoint_url, region_name=region, aws_access_key_id=key_id, aws_secret_access_key=secret
    ).get_client()


class ArchiveResource(ConfigurableResource):
    """Where raw drops are archived. Credentials are optional (meant for ``EnvVar``); default: AWS chain."""

    url: str = Field(description="s3://bucket/prefix, or a local folder (the embedded default)")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; None for AWS")
    region: str = "us-east-1"
    sse: str = Field(default="AES256", description="server-side encryption: AES256 or aws:kms")
    kms_key_id: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def open(self) -> Archive:
        return open_archive(
            self.url,
            s3_endpoint_url=self.s3_endpoint_url,
            region=self.region,
            sse=self.sse,
            kms_key_id=self.kms_key_id,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
        )
