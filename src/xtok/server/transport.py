"""HTTP/1.1 connections with read deadlines: uvicorn's httptools protocol, plus timers.

uvicorn closes a connection left idle between requests, but not one that never finishes a
request: a client could open connections and send nothing, half a header, or 3 of the 100 body
bytes it declared, and hold each for ever. Here a new connection or request must deliver its
headers within `read_timeout` seconds, then its body within `read_timeout` more.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def with_read_timeout(read_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's protocol class, closing a connection whose request is not read in time."""

    class TimedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(read_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()  # the handler, if waiting for the body, sees a disconnect

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm()  # now for the body

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedProtocol
