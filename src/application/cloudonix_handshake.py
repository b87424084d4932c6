"""Opening a Cloudonix call: design.md's Cloudonix steps 1-5."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from application.ports.handshake import HandshakeReader
from application.ports.live_call import (
    ActiveCall,
    CallFactory,
    CallSocket,
    ProviderCallRef,
    ProviderSessions,
)
from application.ports.repositories import TelephonyConfigRepository
from application.ports.tracing import NO_TRACER, Tracer, TraceSpan
from application.providers import CallOpener
from domain.agents import Workflow
from domain.close_policy import (
    Close,
    HandshakeTimeoutError,
    MissingBearerTokenError,
    MissingDomainError,
    PeerClosedDuringHandshakeError,
    SessionValidationFailedError,
    UnknownDomainError,
)
from domain.stream_events import StreamStart
from domain.stream_request import AgentStreamRequest
from domain.telephony import Provider, TelephonyConfig, normalize_cloudonix_domain
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

HANDSHAKE_SPAN = "agent_stream.handshake"  # `connected`, `start`, the configuration and the validation
VALIDATE_SPAN = "cloudonix.validate"
MAX_EARLY_MESSAGES = 256  # kept while the session is validated (5 s of media); then reading waits


class CloudonixHandshake(CallOpener):
    def __init__(
        self,
        configs: TelephonyConfigRepository,
        sessions: ProviderSessions,
        calls: CallFactory,
        reader: HandshakeReader,
        handshake_timeout: float,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._configs = configs
        self._sessions = sessions
        self._calls = calls
        self._reader = reader
        self._timeout = handshake_timeout
        self._tracer = tracer

    async def open(
        self,
        socket: CallSocket,
        request: AgentStreamRequest,
        workflow: Workflow,
        run: WorkflowRun,
        on_start: Callable[[StreamStart], None] | None = None,
    ) -> ActiveCall:
        call_span = self._tracer.current()  # the call's: its provider requests are traced under it
        with self._tracer.span(HANDSHAKE_SPAN):
            return await self._open(socket, request, workflow, run, on_start, call_span)

    async def _open(
        self,
        socket: CallSocket,
        request: AgentStreamRequest,
        workflow: Workflow,
        run: WorkflowRun,
        on_start: Callable[[StreamStart], None] | None,
        call_span: TraceSpan,
    ) -> ActiveCall:
        # 1-2. With a Domain on the URL, the configuration is checked before any event is read.
        # A Domain that names nothing (`Domain=.`) counts as none: `start`'s accountSid names it.
        domain = normalize_cloudonix_domain(request.domain)
        config = await self._config(workflow.organization_id, domain) if domain else None
        # 3. connected, then start, each within the handshake timeout.
        start = await self._read_handshake(socket)
        if config is None:
            domain = normalize_cloudonix_domain(start.account_sid)
            if not domain:
                raise MissingDomainError()
            run.logs.setdefault("inbound_webhook", {})["domain_from_start"] = start.account_sid
            config = await self._config(workflow.organization_id, domain)
        if on_start is not None:
            on_start(start)  # the agent starts up while the session is validated
        # 4. The session must exist for this domain's token.
        ref = ProviderCallRef(
            domain=config.domain_id,
            session=start.session,
            bearer_token=config.bearer_token,
            caller_id=start.called_number,  # a transfer's new leg shows the number the caller dialled
            trace=call_span,
        )
        valid, early = await self._validate_watching(socket, ref)
        if not valid:
            raise SessionValidationFailedError()
        # 5. Record the stream's identifiers on the run.
        run.logs["stream"] = start.to_log()
        log.info("session_validated", extra={"telephony_config_id": config.id})
        return self._calls.open(_Replaying(socket, early) if early else socket, start, self._sessions, ref)

    async def _validate_watching(
        self, socket: CallSocket, ref: ProviderCallRef
    ) -> tuple[bool, deque[str | bytes]]:
        """Validate the session while reading the socket: a caller that vanishes meanwhile ends
        the handshake at once, not when the provider answers (or times out). What the caller
        sends meanwhile (media, even `stop`) is kept for the call, in order; a socket, once
        closed, keeps answering `None`, so the call sees a close that came with the answer."""
        early: deque[str | bytes] = deque()
        validation = asyncio.ensure_future(self._validate(ref))
        reading: asyncio.Future[str | bytes | None] | None = None
        try:
            while len(early) < MAX_EARLY_MESSAGES:
                reading = asyncio.ensure_future(socket.receive())
                await asyncio.wait((validation, reading), return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    break
                message, reading = reading.result(), None
                if message is None:
                    if validation.done():  # both at once: the call starts and sees the close
                        break
                    raise PeerClosedDuringHandshakeError(detail="closed during session validation")
                early.append(message)
            return await validation, early
        finally:
            if reading is not None:
                await _cancel_keeping(reading, early)
            if not validation.done():
                validation.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await validation

    async def _validate(self, ref: ProviderCallRef) -> bool:
        with self._tracer.span(VALIDATE_SPAN) as span:
            valid = await self._sessions.validate(ref)
            if not valid:
                span.fail("session validation failed")
            return valid

    async def _config(self, organization_id: int, domain: str) -> TelephonyConfig:
        config = await self._configs.find_by_domain(organization_id, Provider.CLOUDONIX, domain)
        if config is None:
            raise UnknownDomainError(domain)
        if not config.bearer_token:
            raise MissingBearerTokenError()
        return config

    async def _read_handshake(self, socket: CallSocket) -> StreamStart:
        self._reader.read_connected(await self._receive(socket, "connected"))
        start = self._reader.read_start(await self._receive(socket, "start"))
        if start.dropped_parameters:  # counts only: the values are the caller's, maybe hostile
            log.warning(
                "custom_parameters_dropped",
                extra={"kept": len(start.custom_parameters), "dropped": start.dropped_parameters},
            )
        return start

    async def _receive(self, socket: CallSocket, waiting_for: str) -> str | bytes:
        try:
            async with asyncio.timeout(self._timeout):
                message = await socket.receive()
        except TimeoutError:
            raise HandshakeTimeoutError(detail=f"no {waiting_for} event in {self._timeout}s") from None
        if message is None:
            raise PeerClosedDuringHandshakeError(detail=f"closed before {waiting_for}")
        return message


async def _cancel_keeping(reading: asyncio.Future[str | bytes | None], early: deque[str | bytes]) -> None:
    """Stop a pending read; a message it got just before keeps its place."""
    reading.cancel()
    await asyncio.wait((reading,))
    if not reading.cancelled() and reading.exception() is None:
        message = reading.result()
        if message is not None:
            early.append(message)


class _Replaying(CallSocket):
    """The socket, with the messages read while the session was validated handed out first."""

    def __init__(self, socket: CallSocket, early: deque[str | bytes]) -> None:
        self._socket = socket
        self._early = early

    async def receive(self) -> str | bytes | None:
        if self._early:
            return self._early.popleft()
        return await self._socket.receive()

    async def send(self, text: str) -> bool:
        return await self._socket.send(text)

    async def close(self, close: Close) -> None:
        await self._socket.close(close)
