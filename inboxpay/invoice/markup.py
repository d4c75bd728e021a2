"""Find schema.org payment markup in decoded HTML, and cut it out.

Three forms are recognised: JSON-LD ActionRequest/PaymentAction around an Invoice (Outlook
style, kind "action"), a bare JSON-LD Invoice (Gmail style, kind "invoice"), and a microdata
Invoice item (kind "microdata"). Each block carries the span of HTML to delete to remove
that payment request, and its data as a JSON-LD-like dict.

Recognition is deliberately generous, because for mail that fails authentication a missed
block is a payment request that reaches the user: JSON-LD that does not parse, or that
names a payment type in a shape we do not read, is still reported (with empty ``data``, so
it parses as invalid and gets deleted).

The HTML is tokenised here, not with ``html.parser``, so that spans are exact character
offsets and the cost stays linear on hostile input. The tokeniser follows the HTML5 rules
that matter for finding elements (quoted attributes, comments, raw-text elements, void
elements, the usual implied end tags) and nothing more.
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
KIND_INVOICE = "invoice"
KIND_MICRODATA = "microdata"

PAY_ACTIONS = frozenset({"PaymentAction", "PayAction"})
_PAYMENT_TYPES = PAY_ACTIONS | {"Invoice"}  # any of these anywhere makes a payment request
_KNOWN_TYPES = _PAYMENT_TYPES | {
    "ActionRequest",
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
_PAYMENT_WORD = re.compile(r"invoice|paymentaction|payaction", re.IGNORECASE)
_SCHEMA_WORD = re.compile(r"schema\.org|schema:|@type", re.IGNORECASE)


def _is_ld_json(type_attr: str) -> bool:
    return type_attr.split(";", 1)[0].strip().lower() == _LD_JSON


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


def _jsonld_blocks(source: str, start: int, end: int) -> list[MarkupBlock]:
    payload = _unwrap(source)
    if len(payload) > MAX_JSON_BYTES:
        return [MarkupBlock(start, end, _guess_kind(payload), {})]  # too large to vouch for
    try:
        value = json.loads(payload, parse_float=Decimal, parse_constant=Decimal)
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
        if "ActionRequest" in types:
            actions = node.get("action")
            for action in actions if isinstance(actions, list) else [actions]:
                invoice = _invoice_of(resolve(action), resolve)
                if invoice is not None:
                    used.update({id(resolve(action)), id(invoice)})
                    found.append((KIND_ACTION, _resolved(node, ids, _MAX_REF_DEPTH, budget)))
                    break
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
        entity = resolve(action.get(key))
        if isinstance(entity, dict) and "Invoice" in schema_types(entity):
            return entity
    return None


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


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


_VOID = _names(
    "area base br col embed hr img input link meta param source track wbr"
    " basefont bgsound frame keygen command"
)
_RAW_TEXT = _names("script style xmp iframe noembed noframes textarea title")
_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_ATTR_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r /=>]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")  # HTML whitespace; a no-break space stays
_raw_end_cache: dict[str, re.Pattern[str]] = {}

# Start tags that close an open element of the same family (HTML5 "implied end tags").
_CLOSES_P = _names(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption"
    " figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li dd dt main menu nav ol p pre"
    " section table ul"
)
_P_SCOPE_BOUNDARY = _names("applet caption html table td th marquee object template button")
_CLOSES_SIBLING = {
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "tr": frozenset({"tr", "td", "th"}),
    "option": frozenset({"option"}),
    "optgroup": frozenset({"option", "optgroup"}),
}


@dataclass(slots=True)
class _Tag:
    name: str
    start: int
    end: int
    closing: bool
    attrs: dict[str, str]


def _raw_end(name: str) -> re.Pattern[str]:
    pattern = _raw_end_cache.get(name)
    if pattern is None:
        pattern = re.compile(rf"</{name}(?=[\t\n\f\r />]|\Z)", re.IGNORECASE)
        _raw_end_cache[name] = pattern
    return pattern


def _tokens(html: str) -> Iterator[_Tag | tuple[int, int, bool]]:
    """Tags, and text runs as (start, end, raw); comments and bogus markup are skipped.

    ``raw`` marks the content of a raw-text element (script, style, ...), one run each.
    """
    n = len(html)
    pos = 0
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            yield (pos, n, False)
            return
        if lt > pos:
            yield (pos, lt, False)
        match = _TAG_OPEN.match(html, lt)
        if match is not None:
            tag = _parse_tag(html, match)
            yield tag
            pos = tag.end
            if not tag.closing and tag.name in _RAW_TEXT:
                end_tag = _raw_end(tag.name).search(html, pos)
                raw_end = end_tag.start() if end_tag is not None else n
                yield (pos, raw_end, True)
                pos = raw_end
            elif not tag.closing and tag.name == "plaintext":
                yield (pos, n, True)
                return
        elif html.startswith("<!--", lt):
            close = html.find("-->", lt + 2)  # "<!-->" is a whole (empty) comment
            pos = n if close < 0 else close + 3
        elif html.startswith(("<!", "</", "<?"), lt):
            close = html.find(">", lt + 2)  # a bogus comment, up to the next ">"
            pos = n if close < 0 else close + 1
        else:
            yield (lt, lt + 1, False)  # a "<" that starts nothing is text
            pos = lt + 1


def _parse_tag(html: str, match: re.Match[str]) -> _Tag:
    n = len(html)
    attrs: dict[str, str] = {}
    pos = match.end()
    while True:
        pos = _end(_SPACE, html, pos)
        if pos >= n:
            break  # the document ends inside the tag
        char = html[pos]
        if char == ">":
            pos += 1
            break
        if char == "/":
            pos += 1
            continue
        name_end = _end(_ATTR_NAME, html, pos)
        name = html[pos:name_end].lower()
        pos = name_end
        after = _end(_SPACE, html, pos)
        value = ""
        if after < n and html[after] == "=":
            pos = _end(_SPACE, html, after + 1)
            quote = html[pos] if pos < n else ""
            if quote in ('"', "'") and quote:
                close = html.find(quote, pos + 1)
                close = n if close < 0 else close
                value, pos = html[pos + 1 : close], min(close + 1, n)
            else:
                value_end = _end(_UNQUOTED, html, pos)
                value, pos = html[pos:value_end], value_end
            value = _unescape_attribute(value)
        attrs.setdefault(name, value)
    return _Tag(match.group(2).lower(), match.start(), pos, bool(match.group(1)), attrs)


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    found = pattern.match(text, pos)
    return found.end() if found is not None else pos


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


# --- the scan: JSON-LD scripts and microdata items -------------------------------------


@dataclass
class _Node:
    """An element inside a microdata Invoice that has itemprop and/or itemscope."""

    tag: _Tag
    props: list[str]
    owner: _Node | None  # the item its properties belong to
    item: dict[str, object] | None  # set when the element has itemscope
    content_end: int = -1


@dataclass
class _Open:
    name: str
    p_in_scope: bool  # an open <p> that a block-level start tag closes (HTML5 button scope)
    node: _Node | None


class _Scanner:
    """One pass over the tokens, keeping the open elements to find where elements end."""

    def __init__(self, html: str, want_items: bool) -> None:
        self.html = html
        self.want_items = want_items
        self.blocks: list[MarkupBlock] = []
        self._stack: list[_Open] = []
        self._open_names: dict[str, int] = {}
        self._overflow: dict[str, int] = {}
        self._script_start = -1  # an ld+json script whose source and end tag come next
        self._script_source = (0, 0)
        self._root: _Node | None = None  # the outermost Invoice item being read
        self._properties = 0
        self._text_starts: list[int] = []  # text runs inside the root, for property values
        self._text_ends: list[int] = []

    def run(self) -> None:
        for token in _tokens(self.html):
            if isinstance(token, tuple):
                self._text(*token)
            elif token.closing:
                self._end_tag(token)
            else:
                self._start_tag(token)
        end = len(self.html)
        self._script_done(end)
        self._pop_to(0, end)

    def _text(self, start: int, end: int, raw: bool) -> None:
        if raw and self._script_start >= 0:
            self._script_source = (start, end)
        elif self._root is not None and not raw:
            self._text_starts.append(start)
            self._text_ends.append(end)

    def _start_tag(self, tag: _Tag) -> None:
        self._script_done(tag.start)
        if tag.name == "script" and _is_ld_json(tag.attrs.get("type", "")):
            self._script_start, self._script_source = tag.start, (tag.end, tag.end)
        self._imply_end_tags(tag.name, tag.start)
        node = self._item_node(tag) if self.want_items else None
        if tag.name in _VOID:
            if node is not None:
                self._close_node(node, tag.end, tag.end)
            return
        if len(self._stack) >= _MAX_OPEN_ELEMENTS:
            # Deeper than any real mail: count it, so that its end tag is not taken for an
            # ancestor's, but keep no element for it.
            self._overflow[tag.name] = self._overflow.get(tag.name, 0) + 1
            if node is not None:
                self._close_node(node, tag.end, tag.end)
            return
        parent_p = self._stack[-1].p_in_scope if self._stack else False
        p_in_scope = tag.name == "p" or (parent_p and tag.name not in _P_SCOPE_BOUNDARY)
        self._stack.append(_Open(tag.name, p_in_scope, node))
        self._open_names[tag.name] = self._open_names.get(tag.name, 0) + 1

    def _end_tag(self, tag: _Tag) -> None:
        if tag.name == "script":
            self._script_done(tag.end)
        if self._overflow.get(tag.name):
            self._overflow[tag.name] -= 1
            return
        if not self._open_names.get(tag.name):
            return  # a stray end tag closes nothing
        index = len(self._stack) - 1
        while self._stack[index].name != tag.name:
            index -= 1
        self._pop_to(index + 1, tag.start)  # what the end tag closes implicitly
        self._close(self._stack.pop(), tag.start, tag.end)

    def _script_done(self, end: int) -> None:
        """Report the pending ld+json script, which ends at ``end``."""
        if self._script_start >= 0:
            source = self.html[self._script_source[0] : self._script_source[1]]
            self.blocks.extend(_jsonld_blocks(source, self._script_start, end))
            self._script_start = -1

    def _imply_end_tags(self, name: str, at: int) -> None:
        if not self._stack:
            return
        if name in _CLOSES_P and self._stack[-1].p_in_scope:
            index = len(self._stack) - 1
            while self._stack[index].name != "p":
                index -= 1
            self._pop_to(index, at)
        siblings = _CLOSES_SIBLING.get(name, frozenset())
        while self._stack and self._stack[-1].name in siblings:
            self._close(self._stack.pop(), at, at)

    def _pop_to(self, depth: int, at: int) -> None:
        """Close every open element above ``depth``, as ended at ``at`` without an end tag."""
        while len(self._stack) > depth:
            self._close(self._stack.pop(), at, at)

    def _close(self, element: _Open, content_end: int, end: int) -> None:
        self._open_names[element.name] -= 1
        if element.node is not None:
            self._close_node(element.node, content_end, end)

    # Microdata ----------------------------------------------------------------------

    def _item_node(self, tag: _Tag) -> _Node | None:
        """A node for an element that matters to microdata, opening a root if it is one."""
        scoped = "itemscope" in tag.attrs
        if self._root is None:
            types = tag.attrs.get("itemtype", "").split()
            if scoped and any(_INVOICE_ITEMTYPE.match(t) for t in types):
                self._root = _Node(tag, [], None, _item_dict(types))
                self._text_starts.clear()
                self._text_ends.clear()
                self._properties = 0
                return self._root
            return None
        props = tag.attrs.get("itemprop", "").split()
        if not (props or scoped) or self._properties >= _MAX_PROPERTIES:
            return None
        self._properties += 1
        owner = self._current_item()
        item = _item_dict(tag.attrs.get("itemtype", "").split()) if scoped else None
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
            piece = self.html[self._text_starts[index] : min(self._text_ends[index], end)]
            pieces.append(piece)
            size += len(piece)
            if size > _MAX_TEXT:
                break
            index += 1
        return _WHITESPACE.sub(" ", htmllib.unescape("".join(pieces))).strip()


def _item_dict(types: list[str]) -> dict[str, object]:
    bare = sorted(schema_types({"@type": types}))
    if not bare:
        return {}
    return {"@type": bare[0] if len(bare) == 1 else bare}
