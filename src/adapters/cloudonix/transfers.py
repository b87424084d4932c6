"""Cloudonix transfer callbacks: the waiting side of protocol.md §5 step 3.

`HttpxCloudonixSessions.transfer` registers a transfer id with `expect` before it dials the
destination; the HTTP route `POST /api/v1/telephony/cloudonix/transfer-result/{transfer_id}` parses the
body with `payload_from_form_or_json` and hands it to `deliver`, which resolves the waiting future
once the destination answered (conference `participant-join`) or the call failed (`busy`, ...).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

ANSWERED_EVENT = "participant-join"
FAILURE_STATUSES = frozenset({"busy", "noanswer", "cancel", "nocredit", "error", "congestion", "failed"})


@dataclass(frozen=True, slots=True)
class TransferResult:
    """How the destination leg of a transfer ended its ringing."""

    answered: bool
    status: str  # "participant-join" when answered, else the failure status
    session: str | None = None  # the destination leg's session token, when the callback named it


def payload_from_form_or_json(content_type: str, body: bytes) -> dict[str, Any] | list[Any]:
    """Parse a callback body: a JSON object, a JSON list, or form data (urlencoded or multipart).

    Raises `ValueError` for a body that is none of these (bad JSON, a JSON scalar, bad encoding).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return _multipart_form(content_type, body)
    if media_type == "application/x-www-form-urlencoded":
        return _urlencoded_form(body)
    if media_type.endswith(("/json", "+json")) or body.lstrip()[:1] in (b"{", b"["):
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict | list):
            raise ValueError("callback JSON must be an object or a list")
        return data
    return _urlencoded_form(body)


def _urlencoded_form(body: bytes) -> dict[str, Any]:
    form: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
        form.setdefault(key, value)
    return form


def _multipart_form(content_type: str, body: bytes) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart body")
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            form.setdefault(name, raw.decode(part.get_content_charset() or "utf-8"))
    return form


def interpret(payload: dict[str, Any] | list[Any]) -> TransferResult | None:
    """`TransferResult` for a decisive callback, `None` for one to ignore (`ringing`, ...)."""
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        if not isinstance(item, dict):
            continue
        event = _text(item.get("StatusCallbackEvent"))
        status = _text(item.get("status") or item.get("Status") or item.get("CallStatus"))
        session = item.get("Session") or item.get("session") or item.get("token")
        session = session if isinstance(session, str) and session else None
        if event == ANSWERED_EVENT:
            return TransferResult(answered=True, status=ANSWERED_EVENT, session=session)
        for value in (status, event):
            if value in FAILURE_STATUSES:
                return TransferResult(answered=False, status=value, session=session)
    return None


def _text(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


class TransferCallbacks:
    """Registry of transfers waiting for their destination to answer.

    One per process, shared by the Cloudonix adapter and the callback route. `deliver` may be called
    from any thread; the future is resolved on the loop that called `expect`. Ids that finished
    recently stay known (late callbacks such as `participant-leave` are acknowledged, not 404).
    """

    REMEMBER_FINISHED = 1024

    def __init__(self) -> None:  # no arguments: the composition root builds it with `provide(...)`
        self._lock = threading.Lock()
        self._pending: dict[str, asyncio.Future[TransferResult]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    def expect(self, transfer_id: str) -> asyncio.Future[TransferResult]:
        """A future resolved by the first decisive callback for `transfer_id`."""
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        with self._lock:
            if transfer_id in self._pending or transfer_id in self._finished:
                raise ValueError("transfer id already registered")
            self._pending[transfer_id] = future
        return future

    def deliver(self, transfer_id: str, payload: dict[str, Any] | list[Any]) -> bool:
        """Hand over one callback; `False` when the id is unknown (the route answers 404)."""
        with self._lock:
            future = self._pending.get(transfer_id)
            if future is None:
                return transfer_id in self._finished
            result = interpret(payload)
            if result is None:
                return True
            del self._pending[transfer_id]
            self._remember_finished(transfer_id)
        _resolve(future, result)
        return True

    def discard(self, transfer_id: str) -> None:
        """Stop waiting for `transfer_id` (the adapter calls this when it is done, on every path)."""
        with self._lock:
            future = self._pending.pop(transfer_id, None)
            if future is not None or transfer_id in self._finished:
                self._remember_finished(transfer_id)
        if future is not None:
            _cancel(future)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _remember_finished(self, transfer_id: str) -> None:
        self._finished[transfer_id] = None
        self._finished.move_to_end(transfer_id)
        while len(self._finished) > self.REMEMBER_FINISHED:
            self._finished.popitem(last=False)


def _on_own_loop(future: asyncio.Future[Any]) -> bool:
    try:
        return asyncio.get_running_loop() is future.get_loop()
    except RuntimeError:
        return False


def _resolve(future: asyncio.Future[TransferResult], result: TransferResult) -> None:
    def settle() -> None:
        if not future.done():
            future.set_result(result)

    if _on_own_loop(future):
        settle()
    elif not future.get_loop().is_closed():
        future.get_loop().call_soon_threadsafe(settle)


def _cancel(future: asyncio.Future[TransferResult]) -> None:
    if _on_own_loop(future):
        future.cancel()
    elif not future.get_loop().is_closed():
        future.get_loop().call_soon_threadsafe(future.cancel)
