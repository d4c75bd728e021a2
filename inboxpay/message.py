"""A message exactly as the MTA handed it over: header fields as bytes, body as bytes.

Nothing here re-flattens through the ``email`` package: the bytes we hash for DKIM
and the bytes we hand back to the MTA are the bytes we received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass
class RawMessage:
    """Header fields in arrival order and the body with CRLF line ends.

    ``headers`` holds ``(name, value)`` where ``value`` is everything after the
    colon, leading space and folding included (the milter negotiates
    ``P_HDR_LEADSPC`` so that it gets exactly that).
    """

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def values(self, name: str) -> list[bytes]:
        """Every value of header ``name`` (case-insensitive), in order."""
        key = name.lower().encode("ascii")
        return [v for n, v in self.headers if n.lower() == key]

    def header_block(self) -> bytes:
        """The header section, CRLF-terminated, with bare LFs of folded values made CRLF."""
        lines = [n + b":" + _BARE_LF.sub(b"\r\n", v) + b"\r\n" for n, v in self.headers]
        return b"".join(lines)

    def as_bytes(self) -> bytes:
        """The whole message as it travelled, for DKIM verification."""
        return self.header_block() + b"\r\n" + self.body

    @classmethod
    def from_bytes(cls, raw: bytes) -> RawMessage:
        """Split a message file into fields and body (used by tests and the CLI)."""
        raw = _BARE_LF.sub(b"\r\n", raw)
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            head, body = raw, b""
        headers: list[tuple[bytes, bytes]] = []
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t") and headers:
                name, value = headers[-1]
                headers[-1] = (name, value + b"\r\n" + line)
            elif b":" in line:
                name, _, value = line.partition(b":")
                headers.append((name, value))
        return cls(headers=headers, body=body)
