"""The Cloudonix REST API behind the `ProviderSessions` port (protocol.md §4, §5).

Every request carries the domain's bearer token in `Authorization`, `Content-Type: application/json`,
and is bounded by `timeout` seconds end to end. Calls are keyed by the session token, never `callSid`.
Nothing here logs a URL, a header, the bearer token, the session token or a transfer id.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from adapters.cloudonix.transfers import TransferCallbacks, TransferResult, payload_from_form_or_json
from application import log_context
from application.ports.live_call import CallControlError, HangupReport, ProviderCallRef, ProviderSessions
from domain.masking import mask_phone

__all__ = [
    "HttpxCloudonixSessions",
    "RequestObserver",
    "TransferCallbacks",
    "payload_from_form_or_json",
]

log = structlog.get_logger(__name__)

RequestObserver = Callable[[str, str, float], None]
"""`on_request(operation, status, seconds)`: operation is `validate`, `hangup` or `transfer`; status is
the HTTP status code as text, `timeout`, or the transport error's class name."""

HANGUP_OK = frozenset({200, 204, 404})
MOVE_OK = frozenset({200, 202})
MAX_RETRY_AFTER = 10.0
TRANSFER_PROMPT = "Connecting your call."
TRANSFER_RESULT_PATH = "/api/v1/telephony/cloudonix/transfer-result/"
HANGUP_SPAN = "cloudonix.hangup"  # under the call's root span (`ProviderCallRef.trace`)
TRANSFER_SPAN = "cloudonix.transfer"


def _no_metrics(operation: str, status: str, seconds: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Reply:
    """One HTTP attempt: `status` is None when no answer arrived; then `error` says why (the
    transport error's class name, for metrics) and `cause` says it for people (`timeout`,
    `refused`, `connect_failed`, `connection_lost`)."""

    status: int | None
    error: str | None = None
    response: httpx.Response | None = None
    cause: str | None = None

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "error")


class HttpxCloudonixSessions(ProviderSessions):
    def __init__(
        self,
        client: httpx.AsyncClient,
        timeout: float,
        public_url: str,
        retries: int = 3,
        backoff: float = 0.2,
        metrics: RequestObserver | None = None,
        transfers: TransferCallbacks | None = None,
        answer_timeout: float = 30.0,
    ) -> None:
        if timeout <= 0 or answer_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if retries < 1:
            raise ValueError("retries counts attempts in total and must be at least 1")
        self._client = client
        self._timeout = timeout
        self._public_url = public_url.rstrip("/")
        self._retries = retries
        self._backoff = max(backoff, 0.0)
        self._on_request = metrics or _no_metrics
        self._transfers = transfers
        self._answer_timeout = answer_timeout

    # -- the port -------------------------------------------------------------------------------

    async def validate(self, call: ProviderCallRef) -> bool:
        reply = await self._send("validate", "GET", _session_path(call), call)
        if reply.status == 200:
            return True
        log.warning("session_validation_failed", operation="validate", domain=call.domain, status=reply.label)
        return False

    async def hang_up(self, call: ProviderCallRef) -> HangupReport:
        with call.trace.child(HANGUP_SPAN) as span, log_context.bound(trace_id=span.trace_id):
            try:
                report = await self._hang_up(call)
            except CallControlError as exc:
                if exc.report is not None:
                    span.set_attributes(_report_attributes(exc.report))
                span.fail(str(exc))
                raise
            span.set_attributes(_report_attributes(report))
            return report

    async def _hang_up(self, call: ProviderCallRef) -> HangupReport:
        reply = _Reply(status=None, error="not_attempted")
        for attempt in range(1, self._retries + 1):
            reply = await self._send("hangup", "DELETE", _session_path(call), call)
            if reply.status in HANGUP_OK:
                log.info("call_hung_up", domain=call.domain, status=reply.label, attempt=attempt)
                return HangupReport(hung_up=True, attempts=attempt, last_status=reply.status)
            if not _retryable(reply):
                log.warning("hangup_refused", domain=call.domain, status=reply.label, attempt=attempt)
                raise CallControlError(
                    f"Cloudonix hang-up refused: HTTP {reply.label}",
                    HangupReport(hung_up=False, attempts=attempt, last_status=reply.status),
                )
            if attempt < self._retries:
                delay = self._delay(attempt, reply)
                log.warning(
                    "hangup_retrying", domain=call.domain, status=reply.label, attempt=attempt, delay=delay
                )
                await asyncio.sleep(delay)
        log.warning("hangup_failed", domain=call.domain, status=reply.label, attempts=self._retries)
        raise CallControlError(
            f"Cloudonix hang-up failed after {self._retries} attempts: {reply.label}",
            HangupReport(hung_up=False, attempts=self._retries, last_status=reply.status, error=reply.cause),
        )

    async def transfer(self, call: ProviderCallRef, destination: str) -> None:
        with call.trace.child(TRANSFER_SPAN) as span, log_context.bound(trace_id=span.trace_id):
            try:
                await self._transfer(call, destination)
            except CallControlError as exc:
                span.fail(str(exc))
                raise

    async def _transfer(self, call: ProviderCallRef, destination: str) -> None:
        if self._transfers is None:
            raise CallControlError("Cloudonix transfers need a transfer callback registry")
        conference = f"transfer-{call.session}"
        transfer_id = uuid.uuid4().hex
        answered = self._transfers.expect(transfer_id)
        masked = mask_phone(destination)
        try:
            leg = await self._dial(call, destination, conference, transfer_id)
            log.info("transfer_dialed", domain=call.domain, destination=masked)
            result = await self._wait_for_answer(answered)
            if result is None:
                await self._drop_leg(call, leg)
                log.warning("transfer_unanswered", domain=call.domain, destination=masked)
                raise CallControlError(f"transfer not answered within {self._answer_timeout:g}s")
            if not result.answered:
                log.warning("transfer_failed", domain=call.domain, destination=masked, status=result.status)
                raise CallControlError(f"transfer failed: destination {result.status}")
            log.info("transfer_answered", domain=call.domain, destination=masked)
            await self._move_caller(call, conference, leg)
            log.info("call_transferred", domain=call.domain, destination=masked)
        finally:
            self._transfers.discard(transfer_id)

    # -- transfer steps ---------------------------------------------------------------------------

    async def _dial(self, call: ProviderCallRef, destination: str, conference: str, transfer_id: str) -> str:
        """Step 2: call the destination into the conference; returns its session token."""
        callback = f"{self._public_url}{TRANSFER_RESULT_PATH}{transfer_id}"
        body: dict[str, Any] = {
            "destination": destination,
            "timeout": max(1, round(self._answer_timeout)),
            "callback": callback,
            "cxml": destination_cxml(conference, callback),
        }
        if call.caller_id:
            body["caller-id"] = call.caller_id
        path = f"/calls/{_segment(call.domain)}/application"
        reply = await self._send("transfer", "POST", path, call, body)
        token = _token_of(reply)
        if token is None:
            log.warning("transfer_dial_failed", domain=call.domain, status=reply.label)
            raise CallControlError(f"Cloudonix refused to dial the transfer destination: {reply.label}")
        return token

    async def _wait_for_answer(self, answered: asyncio.Future[TransferResult]) -> TransferResult | None:
        """Step 3: the first decisive callback, or `None` when none came in time."""
        try:
            async with asyncio.timeout(self._answer_timeout):
                return await answered
        except TimeoutError:
            return None

    async def _move_caller(self, call: ProviderCallRef, conference: str, leg: str) -> None:
        """Step 4: replace the caller's application with the conference."""
        path = f"/calls/{_segment(call.domain)}/sessions/{_segment(call.session)}/application"
        reply = await self._send("transfer", "POST", path, call, {"cxml": caller_cxml(conference)})
        if reply.status not in MOVE_OK:
            log.warning("transfer_move_failed", domain=call.domain, status=reply.label)
            await self._drop_leg(call, leg)
            raise CallControlError(f"Cloudonix refused to move the caller: {reply.label}")

    async def _drop_leg(self, call: ProviderCallRef, leg: str) -> None:
        """Best effort: end the destination leg so nobody answers into an empty conference."""
        path = f"/customers/self/domains/{_segment(call.domain)}/sessions/{_segment(leg)}"
        reply = await self._send("transfer", "DELETE", path, call)
        if reply.status not in HANGUP_OK:
            log.warning("transfer_leg_not_dropped", domain=call.domain, status=reply.label)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        call: ProviderCallRef,
        body: dict[str, Any] | None = None,
    ) -> _Reply:
        headers = {
            "Authorization": f"Bearer {call.bearer_token.reveal()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        content = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.request(
                    method,
                    path,
                    headers=headers,
                    content=content,
                    timeout=httpx.Timeout(self._timeout),
                )
            reply = _Reply(status=response.status_code, response=response)
        except (TimeoutError, httpx.TimeoutException):
            reply = _Reply(status=None, error="timeout", cause="timeout")
        except httpx.HTTPError as exc:
            reply = _Reply(status=None, error=type(exc).__name__, cause=_cause(exc))
        self._observe(operation, reply.label, time.perf_counter() - started)
        return reply

    def _observe(self, operation: str, status: str, seconds: float) -> None:
        try:
            self._on_request(operation, status, seconds)
        except Exception:  # noqa: BLE001 - a broken metrics hook must not break call control
            log.debug("metrics_hook_failed", operation=operation)

    def _delay(self, attempt: int, reply: _Reply) -> float:
        jittered = self._backoff * (1 << (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter
        retry_after = _retry_after(reply)
        return max(jittered, retry_after) if retry_after is not None else jittered


# -- CXML ------------------------------------------------------------------------------------------


def destination_cxml(conference: str, status_callback: str) -> str:
    """The destination leg's document: a short prompt, then the conference (callbacks on join)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = TRANSFER_PROMPT
    dial = ET.SubElement(response, "Dial")
    ET.SubElement(
        dial,
        "Conference",
        {
            "endConferenceOnExit": "true",
            "statusCallback": status_callback,
            "statusCallbackEvent": "join",
            "holdMusic": "false",
        },
    ).text = conference
    return ET.tostring(response, encoding="unicode")


def caller_cxml(conference: str) -> str:
    """The caller's new document: join the conference, then hang up when it ends."""
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial")
    ET.SubElement(
        dial, "Conference", {"endConferenceOnExit": "true", "beep": "false", "holdMusic": "false"}
    ).text = conference
    ET.SubElement(response, "Hangup")
    return ET.tostring(response, encoding="unicode")


# -- helpers ---------------------------------------------------------------------------------------


def _segment(value: str) -> str:
    return quote(value, safe="")


def _session_path(call: ProviderCallRef) -> str:
    return f"/customers/self/domains/{_segment(call.domain)}/sessions/{_segment(call.session)}"


def _cause(exc: httpx.HTTPError) -> str:
    """A transport failure in words an operator reads: was the API refused, unreachable, or did
    it drop the connection?"""
    if isinstance(exc, httpx.ConnectError):
        seen: BaseException | None = exc
        while seen is not None:
            if isinstance(seen, ConnectionRefusedError):
                return "refused"
            seen = seen.__cause__ or seen.__context__
        return "connect_failed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return "connection_lost"
    return type(exc).__name__


def _report_attributes(report: HangupReport) -> dict[str, int | bool]:
    attributes: dict[str, int | bool] = {
        "cloudonix.hung_up": report.hung_up,
        "cloudonix.attempts": report.attempts,
    }
    if report.last_status is not None:
        attributes["http.response.status_code"] = report.last_status
    return attributes


def _retryable(reply: _Reply) -> bool:
    return reply.status is None or reply.status >= 500 or reply.status == 429


def _retry_after(reply: _Reply) -> float | None:
    if reply.status != 429 or reply.response is None:
        return None
    try:
        seconds = float(str(reply.response.headers.get("Retry-After", "")))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _token_of(reply: _Reply) -> str | None:
    if reply.status != 200 or reply.response is None:
        return None
    try:
        data = reply.response.json()
    except ValueError:
        return None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None
