"""`GET /api/v1/runs/{run_id}/recording`: the run's stereo WAV (caller left, agent right),
organisation-scoped, with single HTTP byte ranges (RFC 9110 §14: 206 + `Content-Range`, 416 when
no byte of the range exists). A multi-range request gets the whole file (a server may ignore
`Range`); so does a `Range` in another unit or malformed."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import MediaType, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_206_PARTIAL_CONTENT,
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
)

from application.authentication import Caller
from application.recordings import GetRecording, RecordingFile
from entrypoints.web.api.auth import SECURITY, require_api_key
from entrypoints.web.api.errors import NOT_FOUND, responses
from entrypoints.web.api.schemas import MAX_ID, ErrorBody

WAV: Final = "audio/wav"
UNSATISFIABLE: Final = (-1, -1)

RunId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="The run's id.")]


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte `Range` asks for; `None` for the whole file (no usable single
    range); `UNSATISFIABLE` when the range holds no byte of the file."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_raw, dash, last_raw = spec.strip().partition("-")
    first_raw, last_raw = first_raw.strip(), last_raw.strip()
    if not dash or not (first_raw.isdigit() or first_raw == "") or not (last_raw.isdigit() or last_raw == ""):
        return None
    if first_raw == "":  # the last N bytes
        if last_raw == "":
            return None
        suffix = int(last_raw)
        return UNSATISFIABLE if suffix == 0 or size == 0 else (max(0, size - suffix), size - 1)
    first = int(first_raw)
    last = int(last_raw) if last_raw else None
    if last is not None and last < first:
        return None  # invalid: ignored
    if first >= size:
        return UNSATISFIABLE
    last = size - 1 if last is None else last
    return first, min(last, size - 1)


_AUDIO = {
    HTTP_200_OK: ResponseSpec(data_container=bytes, media_type=WAV, description="The whole recording."),
    HTTP_206_PARTIAL_CONTENT: ResponseSpec(
        data_container=bytes, media_type=WAV, description="The byte range asked for (`Content-Range`)."
    ),
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE: ResponseSpec(
        data_container=ErrorBody, description="No byte of the range exists (`Content-Range: bytes */size`)."
    ),
}


@get(
    "/api/v1/runs/{run_id:int}/recording",
    tags=["Runs"],
    guards=[require_api_key],
    security=SECURITY,
    summary="Download the run's recording",
    description="The call as a stereo 16-bit 8 kHz WAV: the caller on the left channel, the agent on "
    "the right, placed as the caller heard them. For agents with `recording: true`; 404 when the run "
    "has none (yet). Supports a single HTTP byte range (`Range: bytes=0-1023`).",
    media_type=WAV,
    response_headers=[ResponseHeader(name="Accept-Ranges", value="bytes", description="Byte ranges work.")],
    responses={**responses(NOT_FOUND), **_AUDIO},
)
@inject
async def get_recording(
    run_id: RunId,
    request: Request,  # type: ignore[type-arg]
    caller: FromDishka[Caller],
    recordings: FromDishka[GetRecording],
) -> Response[Any]:
    recording = await recordings.execute(caller.organization_id, run_id)
    return recording_response(recording, request.headers.get("range"), run_id)


def recording_response(recording: RecordingFile, range_header: str | None, run_id: int) -> Response[Any]:
    """The recording, or the byte range `range_header` asks of it (the API's and the console's)."""
    size = recording.size
    wanted = byte_range(range_header, size)
    if wanted == UNSATISFIABLE:
        return Response(
            content=msgspec.json.encode(
                ErrorBody(detail=f"Range not satisfiable: the recording has {size} bytes")
            ),
            media_type=MediaType.JSON,
            status_code=HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    headers = {"Accept-Ranges": "bytes"}
    if wanted is None:
        first, last, status = 0, size - 1, HTTP_200_OK
    else:
        (first, last), status = wanted, HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Disposition"] = f'inline; filename="run-{run_id}.wav"'
    return Stream(recording.read(first, last), status_code=status, media_type=WAV, headers=headers)
