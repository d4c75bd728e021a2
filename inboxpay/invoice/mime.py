"""Locate a message's text/html parts as byte spans, and splice new content into one of them.

The milter hands the body back to the MTA with only the payment markup removed, so nothing
here re-serialises through the ``email`` package: parts are found by scanning the original
bytes for boundary lines (RFC 2046), and a replacement rewrites only the bytes of one part's
content. ``email`` is used for one thing, reading the three MIME fields of a header block,
because Content-Type parameters (quoting, RFC 2231 continuations) are easy to get subtly
wrong. Its parser is not used to split the block: :func:`_header_fields` does that step as
``email.feedparser`` does, keeping only those fields, at a tenth of the cost.

Hostile input must not cost more than linear time or raise: nesting is cut at ``max_depth``,
the number of parts examined at ``max_parts``, and malformed structure or encodings are read
as well as they can be.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32

from inboxpay import charsets, deadline

# A header block longer than this without its blank line is garbage, not headers.
_MAX_HEADER_BLOCK = 256 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_WSP = re.compile(rb"[ \t]*")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TOKEN_END = re.compile(r"[\s;(]")
_COMMENT = re.compile(r"\([^()]*\)")
# email.feedparser's headerRE (not public): a field, a continuation or an mbox "From " line.
_FIELD_OR_CONTINUATION = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
# The fields html_parts reads (MIME-Version only to see it repeat); no others are looked at.
_MIME_FIELDS = frozenset(
    {"content-type", "content-disposition", "content-transfer-encoding", "mime-version"}
)
# Readers disagree on which instance of these counts (we read the first, DKIM signs the last).
_SINGLE_FIELDS = (
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "content-disposition",
)


@dataclass(frozen=True)
class TextPart:
    """One text/html part: where its content lies in the body, and that content decoded.

    ``text`` is decoded as a browser decodes it (``inboxpay.charsets``): a byte-order mark
    first, then the declared charset if the WHATWG Encoding Standard knows the label, else
    UTF-8 when the bytes are valid UTF-8, else windows-1252. ``charset`` names that
    encoding for ``replace_content`` (the declared label, or "utf-8", "windows-1252", or
    "utf-8-sig"/"utf-16le-sig"/"utf-16be-sig" when a byte-order mark leads the content).
    ``doubtful``: what we decoded may not be what the recipient's client shows (a label
    browsers do not know, a byte-order mark that overrode the label, an encoding whose
    Python decoder does not follow the WHATWG one), so the part is not to be trusted.
    """

    start: int
    end: int
    content_type: str
    charset: str
    transfer_encoding: str
    text: str
    doubtful: bool = False


@dataclass(frozen=True)
class _Entity:
    fields: Message
    start: int  # content span, after the entity's header block
    end: int
    depth: int
    beyond: bool = False  # past the read limits: located only


@dataclass(frozen=True)
class Unwalked:
    """A span the walk could not go into: a multipart's content (``boundary`` set: the
    parts between its delimiters were too many or too deep) or a whole body part whose
    header block never ends (``boundary`` None)."""

    start: int
    end: int
    boundary: bytes | None


@dataclass
class HtmlWalk:
    """The text/html parts found, and what lay past the walk's limits.

    ``parts`` were found within ``max_depth`` and ``max_parts``. ``unread`` are text/html
    parts located past those limits (still within the hard caps ``MAX_LOCATE_DEPTH`` and
    ``MAX_LOCATE_PARTS``); ``unwalked`` are spans that could not be walked at all (past
    the hard caps, a header block that never ends, or a body part that repeats one of
    ``_SINGLE_FIELDS``, which readers resolve differently) and mention "html" somewhere.
    Neither is scanned for markup: a caller that cannot let unread HTML through
    neutralises them.
    """

    parts: list[TextPart]
    unread: list[TextPart] = field(default_factory=list)
    unwalked: list[Unwalked] = field(default_factory=list)
    beyond_limits: bool = False  # a limit was reached, whatever lay past it
    repeated_fields: bool = False  # an entity walked repeats a field of _SINGLE_FIELDS

    @property
    def complete(self) -> bool:
        """Whether every part was looked at (False: a part may hold unread HTML)."""
        return not self.beyond_limits


# Past the read limits the walk goes on, only locating parts, down to these hard caps.
MAX_LOCATE_DEPTH = 100
MAX_LOCATE_PARTS = 2000
_HTML_WORD = re.compile(rb"html", re.IGNORECASE)


def html_parts(
    headers: list[tuple[bytes, bytes]], body: bytes, max_depth: int = 10, max_parts: int = 100
) -> list[TextPart]:
    """The text/html parts of a message in body order, skipping attachments (see walk_html)."""
    return walk_html(headers, body, max_depth, max_parts).parts


def walk_html(
    headers: list[tuple[bytes, bytes]], body: bytes, max_depth: int = 10, max_parts: int = 100
) -> HtmlWalk:
    """The text/html parts of a message in body order, skipping attachments.

    ``headers`` are the message's header fields (they give the top-level Content-Type).
    Parts inside multiparts nested deeper than ``max_depth``, or after the first
    ``max_parts`` body parts, are only located (``HtmlWalk.unread``); past the hard caps,
    or where a header block never ends, a span is reported (``HtmlWalk.unwalked``).
    message/rfc822 parts are never entered: a forwarded invoice is not the sender's own
    payment request.
    """
    top = _header_fields(b"".join(name + b":" + value + b"\r\n" for name, value in headers))
    stack = [_Entity(top, 0, len(body), 0)]
    walk = HtmlWalk([])
    # Each child is checked where it is read, and one with repeated fields is not entered.
    walk.repeated_fields = _repeats(top)
    budget, located = max_parts, 0
    hard_depth, hard_parts = max(MAX_LOCATE_DEPTH, max_depth), max(MAX_LOCATE_PARTS, max_parts)
    while stack:
        deadline.check()
        entity = stack.pop()
        ctype = _content_type(entity.fields)
        if entity.fields.get_content_disposition() == "attachment":
            continue
        if ctype == "text/html":
            (walk.unread if entity.beyond else walk.parts).append(_text_part(body, entity))
            continue
        if not ctype.startswith("multipart/"):
            continue
        boundary = _boundary(entity.fields)
        if boundary is None:
            continue  # nothing marks where the parts are: no part can be told apart
        beyond = entity.beyond or entity.depth >= max_depth or budget <= 0
        walk.beyond_limits |= beyond
        limit = hard_parts - located
        spans = _part_spans(body, entity.start, entity.end, boundary, limit)
        if entity.depth >= hard_depth or (
            len(spans) == limit and _more_parts(body, spans[-1][1], entity.end, boundary)
        ):
            _unwalked(walk, body, Unwalked(entity.start, entity.end, boundary))
            continue
        located += len(spans)
        children = []
        for start, end in spans:
            located_only = beyond or budget <= 0
            walk.beyond_limits |= located_only
            digest = ctype == "multipart/digest"
            child = _child(body, start, end, entity.depth + 1, digest, located_only)
            if child is None:
                _unwalked(walk, body, Unwalked(start, end, None))
            elif _repeats(child.fields):
                # Readers differ on which instance counts: no reading of this part is safe.
                walk.repeated_fields = True
                _unwalked(walk, body, Unwalked(start, end, None), limit=False)
            else:
                children.append(child)
                budget -= 0 if located_only else 1
        stack.extend(reversed(children))  # depth first, in body order
    return walk


def _repeats(fields: Message) -> bool:
    names = [name.lower() for name in fields]  # get_all's comparison, done once
    return any(names.count(name) > 1 for name in _SINGLE_FIELDS)


def _unwalked(walk: HtmlWalk, body: bytes, span: Unwalked, limit: bool = True) -> None:
    walk.beyond_limits |= limit
    if _HTML_WORD.search(body, span.start, span.end):  # without it, no part in it is HTML
        walk.unwalked.append(span)


def _more_parts(body: bytes, after: int, end: int, boundary: bytes) -> bool:
    """Whether a delimiter after the last part read opens another part (not the close)."""
    delimiter = b"--" + boundary
    i = body.find(delimiter, after, end)
    return i >= 0 and not body.startswith(b"--", i + len(delimiter), end)


def replace_content(body: bytes, part: TextPart, new_text: str) -> bytes:
    """``body`` with ``part``'s content replaced by ``new_text``, encoded as the part was.

    Only ``body[part.start:part.end]`` changes. The spans of other parts shift when the
    length changes, so replace several parts from the last to the first.
    """
    if not 0 <= part.start <= part.end <= len(body):
        raise ValueError("part span lies outside the body")
    return body[: part.start] + encode_content(body, part, new_text) + body[part.end :]


def encode_content(body: bytes, part: TextPart, new_text: str) -> bytes:
    """``new_text`` in ``part``'s charset and transfer encoding, to stand at its span."""
    old = body[part.start : part.end]
    cte = part.transfer_encoding
    if cte == "base64":
        # Base64 carries the text's own line ends; the encoding's lines are CRLF.
        data = charsets.encode(new_text, part.charset)
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
        if not old.endswith(b"\n"):
            encoded = encoded.rstrip(b"\r\n")
        return encoded
    if cte == "binary":
        return charsets.encode(new_text, part.charset)
    # HTML, so a character the charset lacks can still be written, as a reference.
    data = charsets.encode(_LINE_BREAK.sub("\r\n", new_text), part.charset)
    if cte == "quoted-printable":
        # b2a_qp keeps CRLF only if it sees one before its first soft break.
        return _BARE_LF.sub(b"\r\n", quopri.encodestring(data))
    return data


def _header_fields(block: bytes) -> Message:
    """The MIME fields of a header block, as ``email``'s BytesHeaderParser would give them.

    Line for line the rules of ``FeedParser._parse_headers``: fields end at the first line
    that is not a field or a continuation (the blank line included), a continuation with
    no field before it is dropped, and each value is made by the same compat32 policy.
    Only the fields in ``_MIME_FIELDS`` are kept (so an mbox "From " line, which email
    sets aside, is dropped here as a field of another name).
    """
    fields = Message()
    name, lines = "", list[str]()
    for line in _LINE.findall(block.decode("ascii", "surrogateescape")):
        if not _FIELD_OR_CONTINUATION.match(line):
            break
        if line[0] in " \t":
            if name:
                lines.append(line)
            continue
        if name.lower() in _MIME_FIELDS:
            fields.set_raw(*compat32.header_source_parse(lines))
        colon = line.find(":")
        name, lines = ("", []) if colon <= 0 else (line[:colon], [line])
    if name.lower() in _MIME_FIELDS:
        fields.set_raw(*compat32.header_source_parse(lines))
    return fields


def _content_type(fields: Message) -> str:
    """Like ``Message.get_content_type``, but not thrown by an RFC 822 comment."""
    value = fields.get("content-type")
    if value is None:
        return fields.get_default_type()
    ctype = _COMMENT.sub("", str(value)).split(";", 1)[0].strip().lower()
    return ctype if ctype.count("/") == 1 else fields.get_default_type()


def _boundary(fields: Message) -> bytes | None:
    boundary = fields.get_boundary()
    if not boundary:
        return None
    try:
        return boundary.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def _part_spans(
    body: bytes, start: int, end: int, boundary: bytes, limit: int
) -> list[tuple[int, int]]:
    """Spans of the body parts of a multipart whose content is ``body[start:end]``.

    A part runs from the line after one delimiter line to the line break before the next
    (that line break belongs to the delimiter, RFC 2046 5.1.1). Preamble and epilogue are
    dropped. Without a closing delimiter the last part runs to ``end``.
    """
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while len(spans) < limit:
        i = body.find(delimiter, pos, end)
        if i < 0:
            if part_start is not None:  # no closing delimiter: the last part runs to the end
                spans.append((part_start, end))
            break
        pos = i + 1
        if i > start and body[i - 1] != 0x0A:
            continue  # not at the start of a line
        after = i + len(delimiter)
        closing = body.startswith(b"--", after, end)
        if closing:
            after += 2
        padding = _WSP.match(body, after, end)
        line_end = _line_end(body, padding.end() if padding else after, end)
        if line_end is None:
            continue  # "--boundary" is only the prefix of a longer line
        if part_start is not None:
            spans.append((part_start, _before_line_break(body, part_start, i)))
        if closing:
            break
        part_start = pos = line_end
    return spans


def _line_end(body: bytes, i: int, end: int) -> int | None:
    """Where the next line starts if a line break (or the end of the span) is at ``i``."""
    if i >= end:
        return end
    if body.startswith(b"\r\n", i, end):
        return i + 2
    if body[i] == 0x0A:
        return i + 1
    return None


def _before_line_break(body: bytes, part_start: int, i: int) -> int:
    if i - 2 >= part_start and body[i - 2 : i] == b"\r\n":
        return i - 2
    if i - 1 >= part_start and body[i - 1] == 0x0A:
        return i - 1
    return i


def _child(
    body: bytes, start: int, end: int, depth: int, digest: bool, beyond: bool
) -> _Entity | None:
    """A body part: its header block parsed, its content span after the blank line."""
    if body.startswith(b"\r\n", start, end):
        fields, content = _header_fields(b""), start + 2
    elif body.startswith(b"\n", start, end):
        fields, content = _header_fields(b""), start + 1
    else:
        match = _HEADER_END.search(body, start, min(end, start + _MAX_HEADER_BLOCK))
        if match is not None:
            fields, content = _header_fields(body[start : match.start()]), match.end()
        elif end - start <= _MAX_HEADER_BLOCK:
            fields, content = _header_fields(body[start:end]), end  # headers only, no content
        else:
            return None
    if digest:
        fields.set_default_type("message/rfc822")  # RFC 2046 5.1.5
    return _Entity(fields, content, end, depth, beyond)


def _text_part(body: bytes, entity: _Entity) -> TextPart:
    cte = str(entity.fields.get("content-transfer-encoding", "")).strip().lower()
    cte = _TOKEN_END.split(cte, maxsplit=1)[0] or "7bit"
    data = _transfer_decode(body[entity.start : entity.end], cte)
    decoded = charsets.decode(data, entity.fields.get_content_charset())
    return TextPart(
        entity.start,
        entity.end,
        "text/html",
        decoded.charset,
        cte,
        decoded.text,
        decoded.doubtful,
    )


def _transfer_decode(raw: bytes, cte: str) -> bytes:
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    if cte == "base64":
        # Lenient, as mail readers are: drop whatever is not base64, repair the padding.
        data = _NOT_BASE64.sub(b"", raw)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        except binascii.Error:  # cannot happen after the repair above; keep the raw text
            return raw
    return raw  # 7bit, 8bit, binary, and unknown encodings are read as they are
