"""Recording stores, chosen by `AGENT_STREAM_RECORDINGS_URL`: a local folder (`file://...`) or
S3-compatible object storage (`s3://bucket/prefix`, through aiobotocore; credentials, region and
`AWS_ENDPOINT_URL` come from the standard `AWS_*` variables)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from application.ports.recordings import RecordingStore

CHUNK: Final = 64 * 1024
PART_BYTES: Final = 8 * 1024 * 1024  # S3 multipart: parts of 8 MiB (the minimum is 5 MiB)
SINGLE_PUT_BYTES: Final = 2 * PART_BYTES  # files up to this size go up in one request


class RecordingsUrlError(ValueError):
    """`AGENT_STREAM_RECORDINGS_URL` names no store we know."""


def folder_of(url: str) -> Path | None:
    """The folder of a `file://` URL (`file://./recordings`, `file:///var/recordings`), `None` for
    any other store."""
    if not url.startswith("file://"):
        return None
    path = url.removeprefix("file://")
    if not path:
        raise RecordingsUrlError("AGENT_STREAM_RECORDINGS_URL: file:// needs a folder")
    return Path(path)


def recording_store(url: str) -> RecordingStore:
    folder = folder_of(url)
    if folder is not None:
        return FolderRecordingStore(folder)
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise RecordingsUrlError("AGENT_STREAM_RECORDINGS_URL: s3:// needs a bucket")
        return S3RecordingStore(bucket, prefix)
    raise RecordingsUrlError("AGENT_STREAM_RECORDINGS_URL must be file://FOLDER or s3://BUCKET/PREFIX")


class FolderRecordingStore(RecordingStore):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError("a recording key is a plain file name")
        return self.folder / key

    async def put(self, key: str, path: Path) -> None:
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)

        await asyncio.to_thread(move)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            await asyncio.to_thread(file.seek, start)
            left = end - start + 1
            while left > 0:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def aclose(self) -> None:
        return None


class S3RecordingStore(RecordingStore):
    """Objects `prefix/key` in `bucket`; one client for the process, made at first use."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = None
        self._exit = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                from aiobotocore.session import get_session  # imported only when S3 is used

                self._client = await self._exit.enter_async_context(get_session().create_client("s3"))
            return self._client

    async def put(self, key: str, path: Path) -> None:
        s3 = await self._s3()
        size = (await asyncio.to_thread(path.stat)).st_size
        name = self._key(key)
        if size <= SINGLE_PUT_BYTES:
            body = await asyncio.to_thread(path.read_bytes)
            await s3.put_object(Bucket=self.bucket, Key=name, Body=body, ContentType="audio/wav")
        else:
            await self._put_in_parts(s3, name, path)
        await asyncio.to_thread(path.unlink)

    async def _put_in_parts(self, s3: Any, name: str, path: Path) -> None:
        upload = await s3.create_multipart_upload(Bucket=self.bucket, Key=name, ContentType="audio/wav")
        upload_id = upload["UploadId"]
        parts = []
        try:
            with path.open("rb") as file:
                number = 1
                while chunk := await asyncio.to_thread(file.read, PART_BYTES):
                    answer = await s3.upload_part(
                        Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    number += 1
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        answer = await s3.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}")
        async with answer["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk[0] if isinstance(chunk, tuple) else chunk

    async def aclose(self) -> None:
        await self._exit.aclose()
        self._client = None
