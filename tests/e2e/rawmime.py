"""Reading delivered mail byte-exactly: header fields in order, body, MIME leaf parts.

The stdlib parser re-flattens and forgives; assertions about "byte-identical"
need the bytes as they are. Maildir files have LF line ends while the wire has
CRLF, so everything here works on LF-normalized bytes.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32

_FIELD_START = re.compile(rb"^[!-9;-~]+:")


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def split(raw: bytes) -> tuple[bytes, bytes]:
    """(header block without the empty line, body) of LF-normalized ``raw``."""
    data = lf(raw)
    if data.startswith(b"\n"):
        return b"", data[1:]
    end = data.find(b"\n\n")
    if end < 0:
        return data, b""
    return data[: end + 1], data[end + 2 :]


def header_lines(raw: bytes) -> list[bytes]:
    """The physical lines of the header block, folded continuation lines included."""
    return split(raw)[0].splitlines()


@dataclass(frozen=True)
class Field:
    name: str
    value: str  # unfolded, latin-1 decoded so 8-bit bytes survive

    def is_named(self, name: str) -> bool:
        return self.name.lower() == name.lower()


def fields(raw: bytes) -> list[Field]:
    """Header fields in order, unfolded."""
    out: list[tuple[bytes, bytes]] = []
    for line in header_lines(raw):
        if line[:1] in (b" ", b"\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + line)
        elif _FIELD_START.match(line):
            name, _, value = line.partition(b":")
            out.append((name, value))
    return [Field(n.decode("latin-1"), v.decode("latin-1").strip()) for n, v in out]


def values(raw: bytes, name: str) -> list[str]:
    return [f.value for f in fields(raw) if f.is_named(name)]


@dataclass(frozen=True)
class Part:
    content_type: str
    raw: bytes  # the part's own header block and body, as on the wire (LF)

    def decoded(self) -> bytes:
        payload = _parse(self.raw).get_payload(decode=True)
        return payload if isinstance(payload, bytes) else b""


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=compat32)


def _boundary(head: bytes) -> bytes | None:
    msg = _parse(head + b"\n")
    if msg.get_content_maintype() != "multipart":
        return None
    b = msg.get_param("boundary")
    return b.encode("latin-1") if isinstance(b, str) else None


def _split_multipart(body: bytes, b: bytes) -> list[bytes]:
    """The parts between the delimiters; preamble and epilogue dropped."""
    delimiter = re.compile(rb"^--" + re.escape(b) + rb"(--)?[ \t]*$", re.MULTILINE)
    parts: list[bytes] = []
    start: int | None = None
    for m in delimiter.finditer(body):
        if start is not None:
            # The line end before a delimiter belongs to the delimiter.
            parts.append(body[start : max(start, m.start() - 1)])
        if m.group(1):
            return parts
        start = m.end() + 1
    if start is not None and start < len(body):
        parts.append(body[start:])
    return parts


def leaf_parts(raw: bytes) -> list[Part]:
    """Every non-multipart entity, depth first, as raw bytes."""
    head, body = split(raw)
    b = _boundary(head)
    if b is None:
        return [Part(_parse(head + b"\n").get_content_type(), lf(raw))]
    parts: list[Part] = []
    for chunk in _split_multipart(body, b):
        parts.extend(leaf_parts(chunk))
    return parts


def html_parts(raw: bytes) -> list[bytes]:
    return [p.decoded() for p in leaf_parts(raw) if p.content_type == "text/html"]


def other_parts(raw: bytes) -> list[bytes]:
    return [p.raw for p in leaf_parts(raw) if p.content_type != "text/html"]
