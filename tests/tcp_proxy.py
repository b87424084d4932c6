"""A real TCP proxy on a loopback port, for putting network faults between the service and a server.

    with TcpProxy("127.0.0.1", 5432) as proxy:     # serves on proxy.port
        proxy.set_mode("blackhole")                 # or "pass", "refuse"

The upstream may also be a PostgreSQL socket directory (a host starting with "/", as pgserver
gives): the proxy then connects to `<dir>/.s.PGSQL.<port>`.

- `pass`: bytes flow both ways.
- `refuse`: every connection, open or new, is reset (RST, SO_LINGER 0) -- a server that went away.
- `blackhole`: new connections are accepted and held, open ones are kept open, and nothing is
  forwarded either way -- packets dropped, no RST. Bytes already read are held back, not lost, and
  flow again on `pass` (as TCP retransmission would deliver them once the path heals); a held new
  connection is then connected upstream.

The proxy runs its own event loop on a thread, so it keeps working whatever the test's loop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole"]
_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._mode: Mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._passing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.accepted = 0  # connections accepted, whatever became of them

    @property
    def mode(self) -> Mode:
        return self._mode

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set_mode(self, mode: Mode) -> None:
        """Switch the fault; returns once open connections are dealt with (reset, held, resumed)."""
        if mode not in ("pass", "refuse", "blackhole"):
            raise ValueError(f"unknown proxy mode: {mode!r}")
        asyncio.run_coroutine_threadsafe(self._switch(mode), self._loop).result(timeout=10)

    @property
    def open_connections(self) -> int:
        """Client-side and upstream sockets the proxy holds open now."""
        return len(self._writers)

    # On the proxy's loop -----------------------------------------------------------------------

    async def _start(self) -> None:
        self._passing = asyncio.Event()
        self._passing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _switch(self, mode: Mode) -> None:
        assert self._passing is not None
        self._mode = mode
        if mode == "pass":
            self._passing.set()
            return
        self._passing.clear()
        if mode == "refuse":
            self._reset_all()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._mode == "refuse":
            _reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None and self._passing is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            await self._passing.wait()  # a black hole holds the new connection here
            up_reader, upstream = await self._connect_upstream()
            self._writers.add(upstream)
            await asyncio.gather(self._pump(reader, upstream), self._pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only the proxy's own stop cancels this; ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            return
        finally:
            self._tasks.discard(task)
            for side in (writer, upstream):
                if side is not None and side in self._writers:
                    self._writers.discard(side)
                    side.close()

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self._upstream
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._passing is not None
        try:
            while data := await reader.read(_CHUNK):
                await self._passing.wait()  # held back, not lost, while the path is a black hole
                if writer not in self._writers:
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            # One side finished: end the other (a half-close is not worth emulating here).
            if writer in self._writers:
                self._writers.discard(writer)
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: SO_LINGER on, with a zero timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
