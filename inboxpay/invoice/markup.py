"""Find schema.org payment markup in decoded HTML, and cut it out.

Four forms are recognised (docs/markup.md): JSON-LD ActionRequest/PaymentAction around an
Invoice (Outlook style, kind "action"), a SignedActionRequest (Outlook's dynamic senders,
kind "signed"), a bare JSON-LD Invoice (Gmail style, kind "invoice"), and a microdata
Invoice item (kind "microdata"). Each block carries the span of HTML to delete to remove
that payment request, and its data as a JSON-LD-like dict, with the aliases schema.org's
context defines ("type", "id", terms of an inline @context) already turned into "@type"
and "@id".

Recognition is deliberately generous, because for mail that fails authentication a missed
block is a payment request that reaches the user: JSON-LD that does not parse, or that
names a payment type in a shape we do not read, is still reported (with empty ``data``, so
it parses as invalid and gets deleted).

The HTML is tokenised here, not with ``html.parser``, so that spans are exact character
offsets and the cost stays linear on hostile input. A sender who hides markup from this
scanner gets it past removal to a mail client that does read it, so the tokeniser follows
the WHATWG rules that decide where elements and their text are (every comment state, raw
text, script data escapes, SVG and MathML foreign content with its integration points),
and ``crosscheck`` compares the result with a conformant parser.
"""

from __future__ import annotations

import bisect
import html as htmllib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html.entities import html5 as _ENTITIES

from inboxpay import deadline

KIND_ACTION = "action"
KIND_SIGNED = "signed"
KIND_INVOICE = "invoice"
KIND_MICRODATA = "microdata"

PAY_ACTIONS = frozenset({"PaymentAction", "PayAction"})
SIGNED_REQUEST = "SignedActionRequest"
# Any of these anywhere makes a payment request.
_PAYMENT_TYPES = PAY_ACTIONS | {"Invoice", SIGNED_REQUEST}
_KNOWN_TYPES = _PAYMENT_TYPES | {
    "ActionRequest",
    "ViewAction",
    "PriceSpecification",
    "UnitPriceSpecification",
    "CompoundPriceSpecification",
    "MonetaryAmount",
    "Organization",
    "Person",
    "PropertyValue",
    "EntryPoint",
}
_CANONICAL = {name.lower(): name for name in _KNOWN_TYPES}
_TYPE_PREFIX = re.compile(r"^(?:https?://(?:www\.)?schema\.org/|schema:)", re.IGNORECASE)
_INVOICE_ITEMTYPE = re.compile(r"^https?://(?:www\.)?schema\.org/invoice/?$", re.IGNORECASE)

# Limits that keep hostile markup cheap; real invoices are far below them.
_MAX_OPEN_ELEMENTS = 1024
_MAX_PROPERTIES = 500
_MAX_TEXT = 2000
_MAX_JSON_NODES = 200_000
_MAX_REF_DEPTH = 4
# JSON-LD: a block larger than this is not parsed and is reported unread (so it is removed),
# whatever it says; reference resolution may produce at most this many nodes (an @graph whose
# nodes each refer N times to the next grows as N**4), past which the block is reported
# unread too.
MAX_JSON_BYTES = 1024 * 1024
MAX_RESOLVED_NODES = 5_000


@dataclass(frozen=True)
class MarkupBlock:
    """One payment request: ``html[start:end]`` removes it; ``data`` is what it says."""

    start: int
    end: int
    kind: str
    data: dict[str, object]


def find_payment_markup(html: str) -> list[MarkupBlock]:
    """Every payment request in ``html``, in document order."""
    lowered = html.lower()
    want_scripts, want_items = "<script" in lowered, "itemscope" in lowered
    if not (want_scripts or want_items):
        return []  # the common case, without tokenising
    scanner = _Scanner(html, want_items)
    scanner.run()
    return sorted(scanner.blocks, key=lambda b: (b.start, b.end))


def remove_blocks(html: str, blocks: Sequence[MarkupBlock]) -> str:
    """``html`` without the spans of ``blocks`` (overlapping or repeated spans are fine)."""
    out: list[str] = []
    pos = 0
    for start, end in sorted((b.start, b.end) for b in blocks):
        if not 0 <= start <= end <= len(html):
            raise ValueError("markup block span lies outside the HTML")
        if start > pos:
            out.append(html[pos:start])
        pos = max(pos, end)
    out.append(html[pos:])
    return "".join(out)


def schema_types(node: object) -> frozenset[str]:
    """The bare schema.org type names of a JSON-LD node or microdata item.

    "Invoice", "schema:Invoice", "https://schema.org/Invoice/" and ["Invoice", "Thing"] all
    give Invoice; the payment and price types are matched case-insensitively.
    """
    if not isinstance(node, dict):
        return frozenset()
    raw = node.get("@type")
    names = raw if isinstance(raw, list) else [raw]
    out = set()
    for name in names:
        if isinstance(name, str):
            bare = _TYPE_PREFIX.sub("", name.strip()).rstrip("/")
            out.add(_CANONICAL.get(bare.lower(), bare))
    return frozenset(out)


# --- JSON-LD -------------------------------------------------------------------------

_LD_JSON = "application/ld+json"
_WRAP_START = re.compile(r"<!--|(?://|/\*)?\s*<!\[CDATA\[(?:\s*\*/)?")
_WRAP_END = re.compile(r"(?:(?://\s*)?-->|(?://|/\*)?\s*\]\]>(?:\s*\*/)?)\s*\Z")
_PAYMENT_WORD = re.compile(r"invoice|paymentaction|payaction|signedactionrequest", re.IGNORECASE)
_SCHEMA_WORD = re.compile(r"schema\.org|schema:|@type", re.IGNORECASE)


def _is_ld_json(type_attr: str) -> bool:
    # As a browser reads the type: ASCII whitespace only, ASCII case-insensitive.
    return type_attr.split(";", 1)[0].strip("\t\n\f\r ").lower() == _LD_JSON


def _unwrap(text: str) -> str:
    """The JSON inside a script, without HTML comment or CDATA wrappers."""
    for _ in range(2):  # "<!--" and CDATA may both be there
        text = text.strip()
        start = _WRAP_START.match(text)
        if start is not None:
            text = text[start.end() :].strip()
        end = _WRAP_END.search(text, max(0, len(text) - 40))
        if end is not None:
            text = text[: end.start()]
    return text.strip()


class _TooLarge(Exception):
    """A JSON-LD block past MAX_JSON_BYTES or MAX_RESOLVED_NODES."""


def jsonld_blocks(source: str, start: int, end: int) -> list[MarkupBlock]:
    """The payment requests in one ld+json script's text, each spanning ``start:end``."""
    payload = _unwrap(source)
    if len(payload) > MAX_JSON_BYTES:
        return [MarkupBlock(start, end, _guess_kind(payload), {})]  # too large to vouch for
    try:
        value = json.loads(payload, parse_float=Decimal, parse_constant=Decimal)
        value = canonical_jsonld(value)
        found = _payment_nodes(value)
    except _TooLarge:
        return [MarkupBlock(start, end, _guess_kind(payload), {})]
    except (ValueError, RecursionError):  # RecursionError: hostile nesting depth
        if _PAYMENT_WORD.search(payload) and _SCHEMA_WORD.search(payload):
            return [MarkupBlock(start, end, _guess_kind(payload), {})]
        return []
    if found:
        return [MarkupBlock(start, end, kind, node) for kind, node in found]
    if _names_payment_type(value):
        return [MarkupBlock(start, end, _guess_kind(payload), {})]
    return []


def _guess_kind(payload: str) -> str:
    return KIND_ACTION if re.search(r"action", payload, re.IGNORECASE) else KIND_INVOICE


def _payment_nodes(value: object) -> list[tuple[str, dict[str, object]]]:
    """The payment requests among the top-level nodes (and @graph) of a JSON-LD document."""
    nodes = [n for n in (value if isinstance(value, list) else [value]) if isinstance(n, dict)]
    for node in list(nodes):
        graph = node.get("@graph")
        if isinstance(graph, list):
            nodes.extend(n for n in graph if isinstance(n, dict))
    ids = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str)}
    budget = _Budget(MAX_RESOLVED_NODES)

    def resolve(x: object) -> object:
        return _deref(x, ids)

    # Requests first, then actions, then invoices, so a node reported inside a request is
    # not reported again on its own.
    rank = {"ActionRequest": 0, "PaymentAction": 1, "PayAction": 1, "Invoice": 2}
    nodes.sort(key=lambda n: min((rank.get(t, 3) for t in schema_types(n)), default=3))
    found: list[tuple[str, dict[str, object]]] = []
    used: set[int] = set()
    for node in nodes:
        types = schema_types(node)
        if id(node) in used:
            continue
        if SIGNED_REQUEST in types:
            found.append((KIND_SIGNED, node))
        elif "ActionRequest" in types:
            # Published: "actions" (an array) with "entity" beside it; earlier senders put
            # one "action" holding the entity. Either makes a request.
            listed = [*_as_list(node.get("actions")), *_as_list(node.get("action"))]
            actions = [a for a in map(resolve, listed) if isinstance(a, dict)]
            actions = [a for a in actions if schema_types(a) & PAY_ACTIONS]
            candidates = [_as_invoice(resolve(node.get("entity")))]
            candidates += [_invoice_of(a, resolve) for a in actions]
            invoice = next((i for i in candidates if i is not None), None)
            if actions and invoice is not None:
                used.update({id(a) for a in actions} | {id(invoice)})
                found.append((KIND_ACTION, _resolved(node, ids, _MAX_REF_DEPTH, budget)))
        elif types & PAY_ACTIONS:
            invoice = _invoice_of(node, resolve)
            if invoice is not None:
                used.add(id(invoice))
                found.append((KIND_ACTION, _resolved(node, ids, _MAX_REF_DEPTH, budget)))
        elif "Invoice" in types:
            found.append((KIND_INVOICE, _resolved(node, ids, _MAX_REF_DEPTH, budget)))
    return found


def _invoice_of(action: object, resolve: Callable[[object], object]) -> dict[str, object] | None:
    if not isinstance(action, dict) or not schema_types(action) & PAY_ACTIONS:
        return None
    for key in ("entity", "object"):
        entity = _as_invoice(resolve(action.get(key)))
        if entity is not None:
            return entity
    return None


def _as_invoice(value: object) -> dict[str, object] | None:
    return value if isinstance(value, dict) and "Invoice" in schema_types(value) else None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- aliases ---------------------------------------------------------------------------

_ALIASES = (("type", "@type"), ("id", "@id"))  # schema.org's own context defines these


def _context_terms(value: object) -> dict[str, str]:
    """Terms that inline @context objects define, anywhere in the document, as IRIs.

    Generous on purpose: a term defined anywhere counts everywhere, so that a type a
    JSON-LD processor would expand to a payment type is one for us too.
    """
    terms: dict[str, str] = {}
    stack = [value]
    seen = 0
    while stack:
        seen += 1
        if seen > _MAX_JSON_NODES:
            raise _TooLarge
        item = stack.pop()
        if isinstance(item, dict):
            for context in _as_list(item.get("@context")):
                if isinstance(context, dict):
                    for term, iri in context.items():
                        iri = iri.get("@id") if isinstance(iri, dict) else iri
                        if isinstance(term, str) and isinstance(iri, str):
                            terms[term] = iri
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return terms


def canonical_jsonld(value: object) -> object:
    """A parsed JSON-LD document with its aliases read, as blocks' ``data`` has them."""
    return _canonical(value, _context_terms(value), _Budget(_MAX_JSON_NODES))


def _expand(name: str, terms: dict[str, str]) -> str:
    """A type name with terms and compact IRIs ("s:Invoice") expanded, a few levels deep."""
    for _ in range(4):
        if name in terms:
            name = terms[name]
            continue
        prefix, colon, rest = name.partition(":")
        if colon and prefix in terms and not rest.startswith("//"):
            name = terms[prefix] + rest
            continue
        break
    return name


def _canonical(value: object, terms: dict[str, str], budget: _Budget) -> object:
    """A copy of a JSON-LD document with "type"/"id" as "@type"/"@id" and types expanded."""
    budget.take()
    if isinstance(value, list):
        return [_canonical(v, terms, budget) for v in value]
    if not isinstance(value, dict):
        return value
    node = {k: _canonical(v, terms, budget) for k, v in value.items() if k != "@context"}
    if "@context" in value:
        node["@context"] = value["@context"]
    for alias, keyword in _ALIASES:
        if alias in node and keyword not in node:
            node[keyword] = node.pop(alias)
        elif alias in node and keyword == "@type":
            node[keyword] = [*_as_list(node[keyword]), *_as_list(node.pop(alias))]
    types = node.get("@type")
    if terms and types is not None:
        node["@type"] = [_expand(t, terms) if isinstance(t, str) else t for t in _as_list(types)]
    return node


def _deref(value: object, ids: dict[str, dict[str, object]]) -> object:
    """The graph node a bare ``{"@id": ...}`` reference names, else ``value`` itself."""
    if isinstance(value, dict) and len(value) == 1:
        ref = value.get("@id")
        if isinstance(ref, str):
            return ids.get(ref, value)
    return value


class _Budget:
    """How many more nodes reference resolution may produce for one JSON-LD block."""

    def __init__(self, nodes: int) -> None:
        self.left = nodes

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _TooLarge
        if self.left % 256 == 0:
            deadline.check()


def _resolved(
    node: dict[str, object], ids: dict[str, dict[str, object]], depth: int, budget: _Budget
) -> dict[str, object]:
    """A copy of ``node`` with references to graph nodes filled in, ``depth`` levels down."""
    budget.take()
    if depth == 0:
        return node

    def one(value: object) -> object:
        value = _deref(value, ids)
        return _resolved(value, ids, depth - 1, budget) if isinstance(value, dict) else value

    return {
        key: [one(v) for v in value] if isinstance(value, list) else one(value)
        for key, value in node.items()
    }


def _names_payment_type(value: object) -> bool:
    """Whether any node anywhere has a payment type (too many nodes counts as yes)."""
    stack = [value]
    seen = 0
    while stack:
        seen += 1
        if seen > _MAX_JSON_NODES:
            return True
        if seen % 1024 == 0:
            deadline.check()
        item = stack.pop()
        if isinstance(item, dict):
            if schema_types(item) & _PAYMENT_TYPES:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# --- HTML tokens -----------------------------------------------------------------------
#
# The WHATWG tokenizer, reduced to what decides where elements and their text are: tags and
# attributes, comments (with every comment end state), bogus comments, CDATA sections in
# foreign content, and the RAWTEXT, RCDATA, script data (with its escaped and double-escaped
# states) and PLAINTEXT states that the tree builder switches to. Every search only moves
# forward, so hostile input costs linear time. A browser that reads markup we do not is a
# payment request we fail to remove, so each rule here is the standard's, not a shortcut.


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


_VOID = _names(
    "area base br col embed hr img input link meta param source track wbr"
    " basefont bgsound frame keygen command"
)
# What an HTML start tag switches the tokenizer to (scripting disabled, as in mail readers,
# so <noscript> holds markup).
_CONTENT_STATE = {
    **dict.fromkeys(_names("style xmp iframe noembed noframes"), "rawtext"),
    **dict.fromkeys(_names("title textarea"), "rcdata"),
    "script": "script",
    "plaintext": "plaintext",
}
# Text token kinds: markup text (character references decoded), the content of a RAWTEXT
# or script element (literal), of an RCDATA element (references decoded), a CDATA section.
_DATA, _RAW, _RCDATA, _CDATA = range(4)
_Text = tuple[int, int, int]  # (start, end, kind)

_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
# One attribute, as the tokenizer's attribute states read it: the whitespace before it, a
# name (its first character may be "="), then optionally "=" and a value, double-quoted,
# single-quoted (either may run to the end of the document) or unquoted. Where no name
# can start, it matches the whitespace alone and the tag's ">" or a "/" comes next.
_ATTRIBUTE = re.compile(
    r"[\t\n\f\r ]*"
    r"(?:([^\t\n\f\r />][^\t\n\f\r /=>]*)"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:\"([^\"]*)\"?|'([^']*)'?|([^\t\n\f\r >]*)))?)?"
)
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")  # HTML whitespace; a no-break space stays
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Names are matched ASCII case-insensitively only: re.IGNORECASE alone would let the long s
# (U+017F) match "s" and the Kelvin sign match "k", as no browser does.
_NOCASE = re.IGNORECASE | re.ASCII
_TERMINATOR = r"[\t\n\f\r />]"
_COMMENT_CLOSE = re.compile(r"--!?>")
_SCRIPT_DATA = re.compile(rf"<!--|</script{_TERMINATOR}", _NOCASE)
_SCRIPT_ESCAPED = re.compile(rf"-->|</script{_TERMINATOR}|<script{_TERMINATOR}", _NOCASE)
_SCRIPT_DOUBLE_ESCAPED = re.compile(rf"-->|</script{_TERMINATOR}", _NOCASE)
_end_tag_cache: dict[str, re.Pattern[str]] = {}


@dataclass(slots=True)
class _Tag:
    name: str
    start: int
    end: int
    closing: bool
    attrs: dict[str, str]
    self_closing: bool = False


@dataclass(slots=True)
class _Mode:
    """What the tree builder tells the tokenizer, as in the standard."""

    content: str = ""  # for the start tag just yielded: a key of _CONTENT_STATE's values
    foreign: bool = False  # the adjusted current node is SVG or MathML: CDATA sections exist


def _ascii_lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _tokens(html: str, mode: _Mode) -> Iterator[_Tag | _Text]:
    """Tags, and text runs as (start, end, kind); comments and bogus markup are skipped.

    After yielding a start tag the tokenizer reads ``mode.content``, which the consumer sets
    while handling the tag; the element's whole content is then one text run.
    """
    n = len(html)
    pos = 0
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            yield (pos, n, _DATA)
            return
        if lt > pos:
            yield (pos, lt, _DATA)
        match = _TAG_OPEN.match(html, lt)
        if match is not None:
            tag = _parse_tag(html, match)
            if tag is None:
                return  # the document ends inside the tag, which is dropped (eof-in-tag)
            yield tag
            pos = tag.end
            if mode.content:
                end = _content_end(html, pos, tag.name, mode.content)
                kind = _RCDATA if mode.content == "rcdata" else _RAW
                mode.content = ""
                yield (pos, end, kind)
                pos = end
        elif html.startswith("<!--", lt):
            pos = _comment_end(html, lt)
        elif mode.foreign and html.startswith("<![CDATA[", lt):
            close = html.find("]]>", lt + 9)
            yield (lt + 9, n if close < 0 else close, _CDATA)
            pos = n if close < 0 else close + 3
        elif html.startswith(("<!", "<?"), lt) or html.startswith("</", lt, n - 1):
            close = html.find(">", lt + 2)  # a doctype or bogus comment: to the next ">"
            pos = n if close < 0 else close + 1
        else:
            yield (lt, lt + 1, _DATA)  # a "<" that starts nothing is text
            pos = lt + 1


def _comment_end(html: str, lt: int) -> int:
    """Where the comment opened by "<!--" at ``lt`` ends.

    "-->" and "--!>" close it, and so do "<!-->" and "<!--->" (the dashes of the opening
    count); "<!--!>" and "<!---!>" do not.
    """
    pos = lt + 2
    while True:
        found = _COMMENT_CLOSE.search(html, pos)
        if found is None:
            return len(html)
        if found.group() == "-->" or found.start() >= lt + 4:
            return found.end()
        pos = found.start() + 1


def _content_end(html: str, pos: int, name: str, state: str) -> int:
    """Where the content of a RAWTEXT, RCDATA, script or PLAINTEXT element ends."""
    if state == "plaintext":
        return len(html)
    if state == "script":
        return _script_end(html, pos)
    pattern = _end_tag_cache.get(name)
    if pattern is None:
        pattern = _end_tag_cache[name] = re.compile(rf"</{name}{_TERMINATOR}", _NOCASE)
    found = pattern.search(html, pos)
    return found.start() if found is not None else len(html)


def _script_end(html: str, pos: int) -> int:
    """Where script data ends: the script data, escaped and double-escaped states.

    "<!--" escapes; inside, "<script" (whole word) double-escapes, and there "</script>"
    only steps back to escaped; "-->" always returns to plain script data.
    """
    state = _SCRIPT_DATA
    while True:
        found = state.search(html, pos)
        if found is None:
            return len(html)
        token = found.group()
        if token == "<!--":
            # The escape's own "--" may be the start of "-->", as in "<!-->".
            state, pos = _SCRIPT_ESCAPED, found.end() - 2
        elif token == "-->":
            state, pos = _SCRIPT_DATA, found.end()
        elif state is _SCRIPT_DOUBLE_ESCAPED:
            state, pos = _SCRIPT_ESCAPED, found.end()  # "</script" + terminator
        elif token[1] == "/":
            return found.start()
        else:
            state, pos = _SCRIPT_DOUBLE_ESCAPED, found.end()  # "<script" + terminator


def _parse_tag(html: str, match: re.Match[str]) -> _Tag | None:
    """The tag that ``match`` opens, or None when the document ends inside it."""
    n = len(html)
    attrs: dict[str, str] = {}
    pos = match.end()
    solidus = False  # the last thing read was a "/" outside any attribute value
    while True:
        attribute = _ATTRIBUTE.match(html, pos)  # always matches: every part is optional
        assert attribute is not None
        pos = attribute.end()
        if pos >= n:
            return None
        name, double, single, unquoted = attribute.groups()
        if name is None:  # no name can start here: the tag's ">" or a "/"
            if html[pos] == ">":
                break
            pos, solidus = pos + 1, True
            continue
        solidus = False
        value = double if double is not None else single if single is not None else unquoted
        attrs.setdefault(_ascii_lower(name), _unescape_attribute(value) if value else "")
    name = _ascii_lower(match.group(2))
    return _Tag(name, match.start(), pos + 1, bool(match.group(1)), attrs, solidus)


def _unescape_attribute(value: str) -> str:
    """Character references in an attribute value, by the HTML5 rules for attributes.

    Unlike ``html.unescape``, a legacy reference without ";" is left alone when letters,
    digits or "=" follow, so "?a=1&currency=USD" stays as written.
    """
    if "&" not in value:
        return value

    def one(ref: re.Match[str]) -> str:
        body = ref.group(1)
        if body.startswith("#"):
            return htmllib.unescape(ref.group(0))
        if body.endswith(";"):
            return _ENTITIES.get(body, ref.group(0))
        if body in _ENTITIES and not value.startswith("=", ref.end()):
            return _ENTITIES[body]
        return ref.group(0)

    return _CHARREF.sub(one, value)


# --- the tree builder, as far as it decides what the tokenizer does ---------------------
#
# Which start tags switch the tokenizer to raw text, and whether CDATA sections exist,
# depend on the namespace of the current node; and which end tag closes what decides the
# current node. So the stack of open elements is kept as the WHATWG tree builder keeps it
# for the cases that can move an element in or out of SVG and MathML: foreign content and
# its integration points, the tags that break out of it, the scope and "special" elements
# that stop an end tag, and the table parts that close cells. Other insertion-mode details
# (foster parenting, the adoption agency's reparenting, <select>) do not change namespaces
# and are approximated; crosscheck.py compares the result with a conformant parser.

_HTML, _SVG, _MATH = "html", "svg", "math"
_SPECIAL = {
    _HTML: _names(
        "address applet area article aside base basefont bgsound blockquote body br button"
        " caption center col colgroup dd details dir div dl dt embed fieldset figcaption"
        " figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html"
        " iframe img input keygen li link listing main marquee menu meta nav noembed noframes"
        " noscript object ol p param plaintext pre script search section select source style"
        " summary table tbody td template textarea tfoot th thead title tr track ul wbr xmp"
    ),
    _SVG: _names("foreignobject desc title"),
    _MATH: _names("mi mo mn ms mtext annotation-xml"),
}
_SCOPE_BOUNDARY = {
    _HTML: _names("applet caption html table td th marquee object template"),
    _SVG: _SPECIAL[_SVG],
    _MATH: _SPECIAL[_MATH],
}
_FORMATTING = _names("a b big code em font i nobr s small strike strong tt u")
# Start tags that leave foreign content (and <font> with one of _FONT_BREAKOUT).
_BREAKOUT = _names(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i"
    " img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table"
    " tt u ul var"
)
_FONT_BREAKOUT = _names("color face size")
_MATH_TEXT_POINTS = _names("mi mo mn ms mtext")
_HTML_ANNOTATION = frozenset({"text/html", "application/xhtml+xml"})
# Table parts: honoured only inside a table, where they close the open cell or row, even
# through foreign content; each is placed above the nearest of its context elements.
_TABLE_CONTEXT = {
    "td": _names("tr tbody thead tfoot table"),
    "th": _names("tr tbody thead tfoot table"),
    "tr": _names("tbody thead tfoot table"),
    **dict.fromkeys(_names("tbody thead tfoot caption colgroup col"), _names("table")),
}
_TABLE = _names("table")
_TABLE_END = _names("table tbody thead tfoot tr td th caption")
# </body> and </html> only switch modes, </br> is <br>, </form> takes the form out of the
# stack without closing what is inside it.
_NO_POP_END = _names("body html br form")
# End tags that the "in body" rules honour only for an element in scope.
_SCOPED_END = _names(
    "address article aside blockquote button center details dialog dir div dl fieldset"
    " figcaption figure footer header hgroup listing main menu nav ol pre search section"
    " summary ul p li dd dt h1 h2 h3 h4 h5 h6 applet marquee object"
)
_HEADINGS = _names("h1 h2 h3 h4 h5 h6")

# <html>, <head> and <body> make an element only where the stack holds no more than these.
_DOCUMENT_ELEMENTS = {
    "html": frozenset[str](),
    "head": _names("html"),
    "body": _names("html head"),
}
# Foreign ld+json scripts inside one another: each text run counts for every open one.
_MAX_NESTED = 8

# Start tags that close an open element of the same family (HTML5 "implied end tags").
_CLOSES_P = _names(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption"
    " figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li dd dt main menu nav ol p pre"
    " section table ul"
)
_CLOSES_SIBLING = {
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "option": frozenset({"option"}),
    "optgroup": frozenset({"option", "optgroup"}),
}


# --- the scan: JSON-LD scripts and microdata items -------------------------------------


@dataclass
class _Node:
    """An element inside a microdata Invoice that has itemprop and/or itemscope."""

    tag: _Tag
    props: list[str]
    owner: _Node | None  # the item its properties belong to
    item: dict[str, object] | None  # set when the element has itemscope
    content_end: int = -1


@dataclass(slots=True)
class _Open:
    """An open element. The indexes are positions in the stack, -1 for none."""

    name: str
    ns: str
    node: _Node | None
    p_in_scope: bool  # an open <p> that a block-level start tag closes (button scope)
    special: int  # the nearest special element, this one included
    boundary: int  # the nearest scope boundary, this one included
    html: int  # the nearest HTML element, this one included
    integration: str = ""  # "html", "text" (MathML text) or "annotation" (annotation-xml)
    script: bool = False  # a foreign <script> whose text is JSON-LD


@dataclass
class _ForeignScript:
    """An SVG or MathML <script> of type ld+json: its text is its descendants' text."""

    start: int
    pieces: list[_Text]


class _Scanner:
    """One pass over the tokens, keeping the open elements to find where elements end."""

    def __init__(self, html: str, want_items: bool) -> None:
        self.html = html
        self.want_items = want_items
        self.blocks: list[MarkupBlock] = []
        self._mode = _Mode()
        self._stack: list[_Open] = []
        self._open: dict[tuple[str, str], list[int]] = {}  # (ns, name) -> stack indexes
        self._overflow: dict[str, int] = {}
        self._script_start = -1  # an ld+json script whose source and end tag come next
        self._script_source = (0, 0)
        self._foreign_scripts: list[_ForeignScript] = []  # open ones, outermost first
        self._root: _Node | None = None  # the outermost Invoice item being read
        self._properties = 0
        self._text_starts: list[int] = []  # text runs inside the root, for property values
        self._text_ends: list[int] = []
        self._text_literal: list[bool] = []

    def run(self) -> None:
        for count, token in enumerate(_tokens(self.html, self._mode)):
            if count % 4096 == 0:
                deadline.check()
            if isinstance(token, tuple):
                self._text(*token)
            elif token.closing:
                self._end_tag(token)
            else:
                self._start_tag(token)
            self._mode.foreign = bool(self._stack) and self._stack[-1].ns != _HTML
        end = len(self.html)
        self._script_done(end)
        self._pop_to(0, end)

    def _text(self, start: int, end: int, kind: int) -> None:
        if kind == _RAW and self._script_start >= 0:
            self._script_source = (start, end)
        for script in self._foreign_scripts:
            script.pieces.append((start, end, kind))
        if self._root is not None and kind != _RAW:
            self._text_starts.append(start)
            self._text_ends.append(end)
            self._text_literal.append(kind == _CDATA)

    # Start tags ------------------------------------------------------------------------

    def _start_tag(self, tag: _Tag) -> None:
        self._script_done(tag.start)
        top = self._stack[-1] if self._stack else None
        if top is not None and top.ns != _HTML and not self._html_rules_apply(top, tag):
            if not self._breaks_out(tag):
                self._insert(tag, top.ns)
                return
            self._pop_foreign(tag.start)
        self._html_start_tag(tag)

    @staticmethod
    def _html_rules_apply(top: _Open, tag: _Tag) -> bool:
        """The tree construction dispatcher: a start tag at an integration point is HTML."""
        if top.integration == "html":
            return True
        if top.integration == "text":
            return tag.name not in ("mglyph", "malignmark")
        return top.integration == "annotation" and tag.name == "svg"

    @staticmethod
    def _breaks_out(tag: _Tag) -> bool:
        if tag.name == "font":
            return not _FONT_BREAKOUT.isdisjoint(tag.attrs)
        return tag.name in _BREAKOUT

    def _pop_foreign(self, at: int) -> None:
        """Pop foreign elements down to an HTML element or an HTML or text integration point."""
        while self._stack:
            top = self._stack[-1]
            if top.ns == _HTML or top.integration in ("html", "text"):
                return
            self._close(self._stack.pop(), at, at)

    def _html_start_tag(self, tag: _Tag) -> None:
        name = "img" if tag.name == "image" else tag.name  # as the standard says
        if name in _DOCUMENT_ELEMENTS and self._stack_beyond(_DOCUMENT_ELEMENTS[name]):
            self._merged_attributes(tag)
            return
        if name in _TABLE_CONTEXT:
            if not self._open.get((_HTML, "table")):
                return  # outside a table a table part is ignored
            self._pop_to(self._nearest(_HTML, _TABLE_CONTEXT[name]) + 1, tag.start)
        if name == "script" and _is_ld_json(tag.attrs.get("type", "")):
            self._script_start, self._script_source = tag.start, (tag.end, tag.end)
        self._imply_end_tags(name, tag.start)
        self._mode.content = _CONTENT_STATE.get(name, "")
        ns = _SVG if name == "svg" else _MATH if name == "math" else _HTML
        if ns == _HTML and name != tag.name:
            tag = _Tag(name, tag.start, tag.end, tag.closing, tag.attrs, tag.self_closing)
        self._insert(tag, ns)

    def _stack_beyond(self, allowed: frozenset[str]) -> bool:
        return any(e.ns != _HTML or e.name not in allowed for e in self._stack[:3])

    def _merged_attributes(self, tag: _Tag) -> None:
        """A late <html> or <body>: no element, but its attributes join the existing one.

        An Invoice item made that way spans the whole document; deleting the tag that
        brings the attributes removes it.
        """
        if not self.want_items or tag.name == "head" or "itemscope" not in tag.attrs:
            return
        if any(_INVOICE_ITEMTYPE.match(t) for t in tag.attrs.get("itemtype", "").split()):
            self.blocks.append(MarkupBlock(tag.start, tag.end, KIND_MICRODATA, {}))

    def _insert(self, tag: _Tag, ns: str) -> None:
        node = self._item_node(tag) if self.want_items else None
        if (ns == _HTML and tag.name in _VOID) or (ns != _HTML and tag.self_closing):
            if node is not None:
                self._close_node(node, tag.end, tag.end)
            return
        if len(self._stack) >= _MAX_OPEN_ELEMENTS:
            # Deeper than any real mail: count it, so that its end tag is not taken for an
            # ancestor's, but keep no element for it (crosscheck.py reads such depths).
            self._overflow[tag.name] = self._overflow.get(tag.name, 0) + 1
            if node is not None:
                self._close_node(node, tag.end, tag.end)
            return
        self._push(tag, ns, node)

    def _push(self, tag: _Tag, ns: str, node: _Node | None) -> None:
        index = len(self._stack)
        parent = self._stack[-1] if self._stack else None
        boundary = tag.name in _SCOPE_BOUNDARY[ns]
        p_in_scope = (ns == _HTML and tag.name == "p") or (
            parent is not None
            and parent.p_in_scope
            and not boundary
            and not (ns == _HTML and tag.name == "button")
        )
        element = _Open(
            tag.name,
            ns,
            node,
            p_in_scope,
            special=index if tag.name in _SPECIAL[ns] else (parent.special if parent else -1),
            boundary=index if boundary else (parent.boundary if parent else -1),
            html=index if ns == _HTML else (parent.html if parent else -1),
            integration=_integration(tag, ns),
        )
        if self._starts_foreign_script(tag, ns):
            element.script = True
            self._foreign_scripts.append(_ForeignScript(tag.start, []))
        self._stack.append(element)
        self._open.setdefault((ns, tag.name), []).append(index)

    def _starts_foreign_script(self, tag: _Tag, ns: str) -> bool:
        """An SVG or MathML <script> of type ld+json (nested a few deep at most)."""
        if ns == _HTML or tag.name != "script" or len(self._foreign_scripts) >= _MAX_NESTED:
            return False
        return _is_ld_json(tag.attrs.get("type", ""))

    def _nearest(self, ns: str, names: frozenset[str]) -> int:
        """The stack index of the nearest open element of ``ns`` named one of ``names``."""
        return max((self._open[(ns, n)][-1] for n in names if self._open.get((ns, n))), default=-1)

    def _imply_end_tags(self, name: str, at: int) -> None:
        if not self._stack:
            return
        if name in _CLOSES_P and self._stack[-1].p_in_scope:
            self._pop_to(self._open[(_HTML, "p")][-1], at)
        siblings = _CLOSES_SIBLING.get(name, frozenset())
        while self._stack and self._stack[-1].ns == _HTML and self._stack[-1].name in siblings:
            self._close(self._stack.pop(), at, at)

    # End tags --------------------------------------------------------------------------

    def _end_tag(self, tag: _Tag) -> None:
        if tag.name == "script":
            self._script_done(tag.end)
        if self._overflow.get(tag.name):
            self._overflow[tag.name] -= 1
            return
        if self._stack and self._stack[-1].ns != _HTML:
            self._foreign_end_tag(tag)
        else:
            self._html_end_tag(tag)

    def _foreign_end_tag(self, tag: _Tag) -> None:
        """The rules for end tags in foreign content."""
        if tag.name in ("br", "p"):
            self._pop_foreign(tag.start)
            self._html_end_tag(tag)
            return
        # The nearest element of that name among the foreign ones on top of the stack.
        found = max(
            (
                self._open[(ns, tag.name)][-1]
                for ns in (_SVG, _MATH)
                if self._open.get((ns, tag.name))
            ),
            default=-1,
        )
        if found > self._stack[-1].html:
            self._pop_to(found + 1, tag.start)
            self._close(self._stack.pop(), tag.start, tag.end)
        else:
            self._html_end_tag(tag)

    def _html_end_tag(self, tag: _Tag) -> None:
        """The "in body" (and table) rules for an end tag, as far as they pop elements."""
        name = tag.name
        if name in _NO_POP_END or not self._stack:
            return
        names = _HEADINGS if name in _HEADINGS else frozenset({name})  # </h2> closes an h1
        found = self._nearest(_HTML, names)
        if found < 0 or not self._closes(name, found):
            return  # nothing to close ("</p>" alone makes an empty p: nothing to track)
        self._pop_to(found + 1, tag.start)  # what the end tag closes implicitly
        self._close(self._stack.pop(), tag.start, tag.end)

    def _closes(self, name: str, found: int) -> bool:
        """Whether an end tag closes the open element at ``found`` (and all above it)."""
        top = self._stack[-1]
        if name == "template":
            return True  # through anything, foreign content included
        if name in _TABLE_END:
            return found >= self._nearest(_HTML, _TABLE)  # in table scope
        if name in _FORMATTING:
            # The adoption agency: ignored out of scope; with a special element above, that
            # element stays open and current (approximated by ignoring the tag).
            return found >= top.boundary and found >= top.special
        if name in _SCOPED_END:
            return found >= top.boundary
        return found >= top.special  # "any other end tag" stops at a special element

    def _script_done(self, end: int) -> None:
        """Report the pending ld+json script, which ends at ``end``."""
        if self._script_start >= 0:
            source = self.html[self._script_source[0] : self._script_source[1]]
            self.blocks.extend(jsonld_blocks(source, self._script_start, end))
            self._script_start = -1

    def _pop_to(self, depth: int, at: int) -> None:
        """Close every open element above ``depth``, as ended at ``at`` without an end tag."""
        while len(self._stack) > depth:
            self._close(self._stack.pop(), at, at)

    def _close(self, element: _Open, content_end: int, end: int) -> None:
        self._open[(element.ns, element.name)].pop()
        if element.script:
            script = self._foreign_scripts.pop()
            source = "".join(_piece_text(self.html, piece) for piece in script.pieces)
            self.blocks.extend(jsonld_blocks(source, script.start, end))
        if element.node is not None:
            self._close_node(element.node, content_end, end)

    # Microdata ----------------------------------------------------------------------

    def _item_node(self, tag: _Tag) -> _Node | None:
        """A node for an element that matters to microdata, opening a root if it is one."""
        scoped = "itemscope" in tag.attrs
        if self._root is None:
            types = tag.attrs.get("itemtype", "").split()
            if scoped and any(_INVOICE_ITEMTYPE.match(t) for t in types):
                self._root = _Node(tag, [], None, item_dict(types))
                self._text_starts.clear()
                self._text_ends.clear()
                self._text_literal.clear()
                self._properties = 0
                return self._root
            return None
        props = tag.attrs.get("itemprop", "").split()
        if not (props or scoped) or self._properties >= _MAX_PROPERTIES:
            return None
        self._properties += 1
        owner = self._current_item()
        item = item_dict(tag.attrs.get("itemtype", "").split()) if scoped else None
        return _Node(tag, props, owner, item)

    def _current_item(self) -> _Node | None:
        for element in reversed(self._stack):
            if element.node is not None and element.node.item is not None:
                return element.node
        return self._root

    def _close_node(self, node: _Node, content_end: int, end: int) -> None:
        node.content_end = content_end
        if node is self._root:
            assert node.item is not None
            self.blocks.append(MarkupBlock(node.tag.start, end, KIND_MICRODATA, node.item))
            self._root = None
            return
        owner = node.owner
        if owner is None or owner.item is None or not node.props:
            return
        value = node.item if node.item is not None else self._value(node)
        for prop in node.props:
            existing = owner.item.get(prop)
            if existing is None:
                owner.item[prop] = value
            elif isinstance(existing, list):
                existing.append(value)
            else:
                owner.item[prop] = [existing, value]

    def _value(self, node: _Node) -> str:
        """A property's value by the microdata rules (plus "content" on any element)."""
        attrs, name = node.tag.attrs, node.tag.name
        if "content" in attrs:
            return attrs["content"]
        if name in ("a", "area", "link"):
            return attrs.get("href", "")
        if name in ("img", "audio", "embed", "iframe", "source", "track", "video"):
            return attrs.get("src", "")
        if name == "object":
            return attrs.get("data", "")
        if name in ("data", "meter"):
            return attrs.get("value", "")
        if name == "time" and "datetime" in attrs:
            return attrs["datetime"]
        return self._text_content(node.tag.end, node.content_end)

    def _text_content(self, start: int, end: int) -> str:
        pieces: list[str] = []
        size = 0
        index = bisect.bisect_left(self._text_starts, start)
        while index < len(self._text_starts) and self._text_starts[index] < end:
            kind = _CDATA if self._text_literal[index] else _DATA
            piece = _piece_text(
                self.html, (self._text_starts[index], min(self._text_ends[index], end), kind)
            )
            pieces.append(piece)
            size += len(piece)
            if size > _MAX_TEXT:
                break
            index += 1
        return _WHITESPACE.sub(" ", "".join(pieces)).strip()


def _piece_text(html: str, piece: _Text) -> str:
    """A text run as the DOM has it: character references decoded except in raw text."""
    start, end, kind = piece
    text = html[start:end]
    return text if kind in (_RAW, _CDATA) else htmllib.unescape(text)


def _integration(tag: _Tag, ns: str) -> str:
    if ns == _SVG and tag.name in _SPECIAL[_SVG]:
        return "html"
    if ns != _MATH:
        return ""
    if tag.name in _MATH_TEXT_POINTS:
        return "text"
    if tag.name == "annotation-xml":
        encoding = _ascii_lower(tag.attrs.get("encoding", ""))
        return "html" if encoding in _HTML_ANNOTATION else "annotation"
    return ""


def item_dict(types: list[str]) -> dict[str, object]:
    """A microdata item's start: its schema.org type(s) as ``@type``."""
    bare = sorted(schema_types({"@type": types}))
    if not bare:
        return {}
    return {"@type": bare[0] if len(bare) == 1 else bare}
