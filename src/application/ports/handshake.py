"""The port through which a provider's handshake is read: the wire format stays in the adapter."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from domain.stream_events import StreamStart


class HandshakeReader(Protocol):
    """Decodes the first two messages of a media stream, `connected` then `start`.

    Each method raises the domain's `HandshakeError` (close 4400) that says why a message was
    refused: not the expected event, not decodable, too large, an identifier missing or unclean,
    a media format this service cannot play.
    """

    @abstractmethod
    def read_connected(self, message: str | bytes) -> None:
        """Accept the `connected` message, or raise."""

    @abstractmethod
    def read_start(self, message: str | bytes) -> StreamStart:
        """The `start` message's identifiers, or raise."""
