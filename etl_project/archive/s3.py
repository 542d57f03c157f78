"""The archive in a versioned S3 bucket (any S3-compatible endpoint).

Every put carries server-side encryption (``AES256`` by default, or ``aws:kms`` with an optional key id) and
the sha256 in object metadata (``x-amz-meta-sha256``). The staged file is re-hashed before upload (it must
still be what was fetched); small objects are also sent with ``ChecksumSHA256`` set to our hash, so S3 itself
refuses bytes that differ; large ones go through boto3's managed multipart upload with per-part SHA256
checksums. Before any put the latest version is checked with
``head_object``: same sha256 and size means no new version.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from etl_project.archive.base import SNAPSHOT_NAME, Archive, ArchiveError, ArchiveIntegrityError, sha256_of
from etl_project.partitions import validate_district_id

MULTIPART_THRESHOLD = 64 * 1024 * 1024
SSE_MODES = ("AES256", "aws:kms")


def _verify_staged(path: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise ArchiveIntegrityError(f"{path} changed since it was fetched (sha256 {actual}, not {expected})")


def _missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


class S3Archive(Archive):
    def __init__(
        self,
        client,
        bucket: str,
        prefix: str = "",
        sse: str = "AES256",
        kms_key_id: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ):
        if sse not in SSE_MODES:
            raise ArchiveError(f"server-side encryption {sse!r} is not supported: use AES256 or aws:kms")
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.sse, self.kms_key_id = sse, kms_key_id
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_threshold,
            max_concurrency=4,
        )
        self._versioning_checked = False

    def __repr__(self) -> str:
        return f"S3Archive(s3://{self.bucket}/{self.prefix})"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _sse_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def _call(self, what: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise ArchiveError(
                f"S3 {what} s3://{self.bucket}/{kwargs.get('Key', self.prefix)} failed: "
                f"{err.get('Code', '?')} {err.get('Message', '')}".strip()
            ) from None

    def _check_versioning(self) -> None:
        if self._versioning_checked:
            return
        status = self._call("get-bucket-versioning", self.client.get_bucket_versioning, Bucket=self.bucket)
        if status.get("Status") != "Enabled":
            raise ArchiveError(
                f"bucket {self.bucket} does not have versioning enabled "
                f"(status: {status.get('Status', 'never')}); "
                "the archive needs it so that changed files never overwrite history"
            )
        self._versioning_checked = True

    def _same_latest(self, key: str, sha256: str, size: int) -> str | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise ArchiveError(f"S3 head {self.uri(key)} failed: {exc}") from None
        if head.get("Metadata", {}).get("sha256") == sha256 and head.get("ContentLength") == size:
            return head.get("VersionId") or "null"
        return None

    def _extra(self, sha256: str, content_type: str) -> dict:
        return {**self._sse_args(), "Metadata": {"sha256": sha256}, "ContentType": content_type}

    def _put_small(self, key: str, body, sha256: str, content_type: str) -> str:
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        resp = self._call(
            "put",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ChecksumSHA256=checksum,
            **self._extra(sha256, content_type),
        )
        return resp.get("VersionId") or "null"

    def _store_file(self, key: str, path: str, sha256: str, size: int, content_type: str) -> tuple[str, str]:
        self._check_versioning()
        existing = self._same_latest(key, sha256, size)
        if existing:
            return self.uri(key), existing
        if size < self.transfer.multipart_threshold:
            data = Path(path).read_bytes()
            _verify_staged(path, hashlib.sha256(data).hexdigest(), sha256)
            return self.uri(key), self._put_small(key, data, sha256, content_type)
        _verify_staged(path, sha256_of(path)[1], sha256)  # page-cached right after the fetch: cheap
        extra = {**self._extra(sha256, content_type), "ChecksumAlgorithm": "SHA256"}
        try:
            self.client.upload_file(path, self.bucket, key, ExtraArgs=extra, Config=self.transfer)
        except ClientError as exc:
            raise ArchiveError(f"S3 upload of {path} to {self.uri(key)} failed: {exc}") from None
        version = self._same_latest(key, sha256, size)
        if version is None:
            raise ArchiveIntegrityError(
                f"{self.uri(key)} does not hold the bytes just uploaded (concurrent write?)"
            )
        return self.uri(key), version

    def _store_bytes(self, key: str, data: bytes, sha256: str, content_type: str) -> tuple[str, str]:
        self._check_versioning()
        existing = self._same_latest(key, sha256, len(data))
        if existing:
            return self.uri(key), existing
        return self.uri(key), self._put_small(key, data, sha256, content_type)

    def _read_latest(self, key: str) -> tuple[bytes, str, str] | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise ArchiveError(f"S3 get {self.uri(key)} failed: {exc}") from None
        return resp["Body"].read(), self.uri(key), resp.get("VersionId") or "null"

    def _download_version(self, key: str, version_id: str, dest: Path) -> None:
        try:
            self.client.download_file(
                self.bucket, key, str(dest), ExtraArgs={"VersionId": version_id}, Config=self.transfer
            )
        except ClientError as exc:
            if _missing(exc):
                raise ArchiveIntegrityError(f"version {version_id} of {self.uri(key)} is missing") from None
            raise ArchiveError(f"S3 download of {self.uri(key)} version {version_id} failed: {exc}") from None

    def _keys(self, prefix: str):
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _snapshot_nights(self, district: str) -> list[str]:
        base = f"{self.prefix}district={district}/"
        nights = []
        for key in self._keys(base):
            rest = key[len(base) :]
            if rest.startswith("date=") and rest.endswith("/" + SNAPSHOT_NAME):
                nights.append(rest[len("date=") : -len(SNAPSHOT_NAME) - 1])
        return nights

    def purge_district(self, district: str) -> int:
        prefix = f"{self.prefix}district={validate_district_id(district)}/"
        paginator = self.client.get_paginator("list_object_versions")
        count = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            items = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(items), 1000):
                batch = items[i : i + 1000]
                resp = self._call(
                    "delete",
                    self.client.delete_objects,
                    Bucket=self.bucket,
                    Delete={"Objects": batch, "Quiet": True},
                )
                if resp.get("Errors"):
                    first = resp["Errors"][0]
                    raise ArchiveError(f"S3 could not delete {first.get('Key')}: {first.get('Message')}")
                count += len(batch)
        return count
