"""Reading bounded LF-terminated lines from an anyio byte stream."""

from __future__ import annotations

import ssl

import anyio
from anyio.abc import ByteReceiveStream
from anyio.streams.buffered import BufferedByteReceiveStream

from netbat.errors import EmptyStream, IoError, LineTooLong, io_kind_of

# What a broken, reset or closed peer can raise out of an anyio stream.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    ssl.SSLError,
)


class LineReader:
    """Reads one raw line at a time (terminator included) with ``receive_until``.

    EOF before any byte raises ``EmptyStream``; EOF mid-line returns the partial line (it
    counts as a frame) and every later read raises ``EmptyStream``. A line longer than
    ``max_line_bytes`` raises ``LineTooLong``; a broken peer raises ``IoError``.
    """

    def __init__(self, stream: ByteReceiveStream, max_line_bytes: int) -> None:
        self._buffered = BufferedByteReceiveStream(stream)
        self._max = max_line_bytes
        self._eof = False

    async def receive_line(self) -> bytes:
        """Return the next raw line, ``\\n`` included when one was read."""
        if self._eof:
            raise EmptyStream
        try:
            body = await self._buffered.receive_until(b"\n", self._max)
        except anyio.DelimiterNotFound:
            raise LineTooLong(self._max) from None
        except anyio.IncompleteRead:
            self._eof = True
            partial = self._buffered.buffer
            if not partial:
                raise EmptyStream from None
            if len(partial) > self._max:
                raise LineTooLong(self._max) from None
            return partial
        except STREAM_ERRORS as error:
            self._eof = True
            raise IoError(io_kind_of(error)) from error
        line = body + b"\n"
        if len(line) > self._max:
            # One large chunk can hold a delimiter past the bound.
            raise LineTooLong(self._max)
        return line
