"""The pymilter protocol layer (inboxpay.milter.filter), driven by pymilter's own TestCtx.

No mail server: ``Milter.testctx.TestCtx`` stands in for libmilter's context and calls
the callbacks in libmilter's order; a subclass records the edits made at eom.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from io import BytesIO
from socket import AF_INET
from typing import Any

import Milter
import milter
import pytest
from Milter import testctx

from inboxpay.card.header import HEADER as CARD_HEADER
from inboxpay.milter.decide import Action, Verdict
from inboxpay.milter.edits import Edits
from inboxpay.milter.facts import Evidence, MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.pipeline import Outcome

MAX = 65536
CLIENT_IP = "192.0.2.10"
HELO = "mail.post.xero.test"

Call = tuple[Any, ...]


class RecordingCtx(testctx.TestCtx):  # type: ignore[misc]
    """TestCtx that records every edit (TestCtx's own only edit an email.Message)."""

    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.fail = fail  # the action that fails, as libmilter reports it: milter.error

    def _edit(self, *call: Any) -> None:
        if self._stage != Milter.M_EOM:
            raise OSError(f"{call[0]} not called from eom()")
        if call[0] == self.fail:
            raise milter.error(f"cannot {call[0]}")
        self.calls.append(call)

    def chgheader(self, field: str, idx: int, value: str) -> None:
        self._edit("chgheader", field, idx, value)

    def addheader(self, field: str, value: str, idx: int) -> None:
        self._edit("addheader", field, value, idx)

    def replacebody(self, chunk: bytes) -> None:
        self._edit("replacebody", chunk)


class Processor:
    """The injected pipeline: remembers the facts it saw, returns a fixed outcome or raises."""

    def __init__(self, edits: Edits | None = None, error: Exception | None = None) -> None:
        self.edits = edits or Edits()
        self.error = error
        self.seen: list[MessageFacts] = []

    def __call__(self, facts: MessageFacts) -> Outcome:
        self.seen.append(facts)
        if self.error is not None:
            raise self.error
        return Outcome(_evidence(), Verdict(Action.CARD), self.edits)


def _evidence() -> Evidence:
    return Evidence(
        from_addresses=("billing@post.xero.test",),
        from_fields=1,
        message_id="<m@post.xero.test>",
        recipients=(),
        spf=None,
        spf_helo=None,
        dkim=(),
        dmarc=None,
        dmarc_error=False,
        requests=(),
        internal=False,
        truncated=False,
    )


@pytest.fixture(autouse=True)
def fresh_options(monkeypatch: pytest.MonkeyPatch) -> None:
    # TestCtx hands its class-level option list to negotiate(), which edits it in place.
    monkeypatch.setattr(testctx.TestCtx, "default_opts", [Milter.CURR_ACTS, 0x1FFFFF, 0, 0])


@pytest.fixture
def use_processor(monkeypatch: pytest.MonkeyPatch) -> Callable[[Processor], None]:
    """Make libmilter's factory build InboxPayMilter around the given processor."""

    def install(processor: Processor) -> None:
        monkeypatch.setattr(Milter, "factory", functools.partial(InboxPayMilter, processor, MAX))

    return install


GO_ON = (Milter.CONTINUE, Milter.NOREPLY)  # NOREPLY: the no-reply bits were negotiated


def connect(ctx: RecordingCtx) -> InboxPayMilter:
    """negotiate, connect and HELO as libmilter does.

    Not TestCtx._connect: it passes the address as a string where libmilter gives an
    inet client's (addr, port), and it closes the connection on NOREPLY.
    """
    ctx._negotiate()
    ctx._stage = Milter.M_CONNECT
    assert Milter.connect_callback(ctx, "mail.post.xero.test", AF_INET, (CLIENT_IP, 54321)) in GO_ON
    priv = ctx.getpriv()
    assert isinstance(priv, InboxPayMilter)
    ctx._stage = Milter.M_HELO
    assert priv.hello(HELO) in GO_ON
    ctx._stage = None
    return priv


def transaction(
    ctx: RecordingCtx,
    sender: str,
    recipients: list[str],
    fields: list[tuple[str, bytes]],
    body: bytes,
) -> None:
    """MAIL, RCPT, header fields (raw bytes, as libmilter delivers them) and body."""
    ctx._envfrom(f"<{sender}>")
    for rcpt in recipients:
        ctx._envrcpt(f"<{rcpt}>")
    ctx._data()
    for name, value in fields:
        # TestCtx turns a surrogate-escaped str back into the original bytes.
        ctx._header(name, value.decode("ascii", "surrogateescape"))
    ctx._eoh()
    # Not TestCtx._feed_body: it stops at the first chunk answered with NOREPLY.
    stream = BytesIO(body)
    while chunk := stream.read(8192):
        assert ctx.getpriv().body(chunk) in GO_ON


FORGED = [
    ("From", b" Xero <billing@post.xero.test>"),
    (CARD_HEADER, b" eyJhbGciOiJFZERTQSJ9.forged-one.sig"),
    ("Authentication-Results", b" mx.test.example; dkim=pass header.d=forged.invalid"),
    ("Subject", b" Invoice INV-1"),
    (CARD_HEADER, b" eyJhbGciOiJFZERTQSJ9.forged-two.sig"),
]


def test_processor_failure_still_accepts_and_only_deletes_forged_cards(
    use_processor: Callable[[Processor], None],
) -> None:
    processor = Processor(error=RuntimeError("analysis blew up"))
    use_processor(processor)
    ctx = RecordingCtx()
    connect(ctx)
    transaction(ctx, "bounce@post.xero.test", ["bob@example.test"], FORGED, b"<p>hi</p>\r\n")
    assert ctx._eom() == Milter.ACCEPT
    assert len(processor.seen) == 1
    # Highest index first, so deleting the second card does not renumber the first.
    assert ctx.calls == [
        ("chgheader", CARD_HEADER, 2, ""),
        ("chgheader", CARD_HEADER, 1, ""),
    ]


FULL_EDITS = Edits(
    delete=((CARD_HEADER, 1),),
    insert_top=(("Authentication-Results", "mx.test.example; spf=pass"),),
    append=(("InboxPay-Verdict", "card"), (CARD_HEADER, "eyJ.card.sig")),
    body=b"<p>new body</p>\r\n",
)


def test_edits_are_applied_in_order_with_the_conventional_space(
    use_processor: Callable[[Processor], None],
) -> None:
    """The baseline for the failure tests below: what a successful eom does."""
    use_processor(Processor(FULL_EDITS))
    ctx = RecordingCtx()
    connect(ctx)
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], FORGED[:2], b"<p>old</p>\r\n")
    assert ctx._eom() == Milter.ACCEPT
    assert ctx.calls == [
        ("chgheader", CARD_HEADER, 1, ""),
        ("addheader", "Authentication-Results", " mx.test.example; spf=pass", 0),
        ("addheader", "InboxPay-Verdict", " card", -1),
        ("addheader", CARD_HEADER, " eyJ.card.sig", -1),
        ("replacebody", b"<p>new body</p>\r\n"),
    ]


@pytest.mark.parametrize("failing", ["chgheader", "addheader", "replacebody"])
def test_a_refused_edit_still_accepts_the_mail(
    failing: str, use_processor: Callable[[Processor], None]
) -> None:
    use_processor(Processor(FULL_EDITS))
    ctx = RecordingCtx(fail=failing)
    connect(ctx)
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], FORGED[:2], b"<p>old</p>\r\n")
    assert ctx._eom() == Milter.ACCEPT
    done = [c[0] for c in ctx.calls]
    # Applying stops at the refused edit: no card goes on when a forged one could not go off.
    assert failing not in done
    if failing == "chgheader":
        assert done == []


def test_body_past_the_limit_is_spooled_to_disk_and_still_examined(
    use_processor: Callable[[Processor], None],
) -> None:
    processor = Processor()
    use_processor(processor)
    ctx = RecordingCtx()
    m = connect(ctx)
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], FORGED[:1], b"")
    chunk = b"x" * 8192
    for _ in range(MAX // len(chunk)):
        m.body(chunk)
    assert not m._facts.truncated and not m._body.on_disk  # up to the limit: in memory
    m.body(b"y")
    assert m._facts.truncated and m._body.on_disk  # past it: on disk, not in memory
    for _ in range(20):
        m.body(chunk)
    assert ctx._eom() == Milter.ACCEPT
    facts = processor.seen[0]
    # Too large to authenticate, but the whole body is there to be cleaned of markup.
    assert facts.truncated and facts.message.body == chunk * (MAX // len(chunk)) + b"y" + chunk * 20


def test_body_at_the_limit_is_examined_whole(use_processor: Callable[[Processor], None]) -> None:
    processor = Processor()
    use_processor(processor)
    ctx = RecordingCtx()
    connect(ctx)
    body = bytes(range(256)) * (MAX // 256)
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], FORGED[:1], body)
    assert ctx._eom() == Milter.ACCEPT
    facts = processor.seen[0]
    assert not facts.truncated and facts.message.body == body


def test_second_message_on_a_connection_starts_from_fresh_facts(
    use_processor: Callable[[Processor], None],
) -> None:
    processor = Processor()
    use_processor(processor)
    ctx = RecordingCtx()
    connect(ctx)
    ctx._setsymval("{auth_authen}", "alice")
    first_fields = [("From", b" a@one.test"), ("X-First", b" 1")]
    transaction(
        ctx, "a@one.test", ["r1@example.test", "r2@example.test"], first_fields, b"1" * (MAX + 1)
    )
    assert ctx._eom() == Milter.ACCEPT
    # A third transaction is abandoned (RSET: libmilter calls abort) before the second one.
    ctx._macros.clear()
    transaction(ctx, "c@three.test", ["r9@example.test"], [("X-Aborted", b" yes")], b"abandoned")
    ctx._priv.abort()
    transaction(ctx, "b@two.test", ["r3@example.test"], [("From", b" b@two.test")], b"two\r\n")
    assert ctx._eom() == Milter.ACCEPT

    first, second = processor.seen
    assert first.recipients == ["r1@example.test", "r2@example.test"]
    assert first.authenticated and first.truncated
    assert second.mail_from == "b@two.test"
    assert second.recipients == ["r3@example.test"]
    assert second.message.headers == [(b"From", b" b@two.test")]
    assert second.message.body == b"two\r\n"
    assert not second.authenticated and not second.truncated
    # What belongs to the connection carries over.
    assert (second.client_ip, second.helo) == (CLIENT_IP, HELO)


def test_header_fields_arrive_as_bytes_with_8bit_bytes_kept(
    use_processor: Callable[[Processor], None],
) -> None:
    processor = Processor()
    use_processor(processor)
    ctx = RecordingCtx()
    m = connect(ctx)
    assert m._protocol & Milter.P_HDR_LEADSPC  # negotiated: values come verbatim
    fields = [
        ("From", b" Caf\xe9 Xero <billing@post.xero.test>"),
        ("Subject", b" Rechnung f\xfcr M\xe4rz\r\n\t\xa4 70,00"),
        ("X-Utf8", " Gr\u00fc\u00dfe".encode()),
    ]
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], fields, b"body\r\n")
    assert ctx._eom() == Milter.ACCEPT
    headers = processor.seen[0].message.headers
    assert headers == [(n.encode("ascii"), v) for n, v in fields]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)


def test_without_leading_space_negotiated_the_space_is_put_back(
    monkeypatch: pytest.MonkeyPatch, use_processor: Callable[[Processor], None]
) -> None:
    # An MTA that does not offer HDR_LEADSPC strips the space after the colon.
    monkeypatch.setattr(
        testctx.TestCtx, "default_opts", [Milter.CURR_ACTS, 0x1FFFFF & ~Milter.P_HDR_LEADSPC, 0, 0]
    )
    processor = Processor(Edits(append=(("InboxPay-Verdict", "card"),)))
    use_processor(processor)
    ctx = RecordingCtx()
    m = connect(ctx)
    assert not m._protocol & Milter.P_HDR_LEADSPC
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], [("Subject", b"Caf\xe9")], b"")
    assert ctx._eom() == Milter.ACCEPT
    assert processor.seen[0].message.headers == [(b"Subject", b" Caf\xe9")]
    assert ctx.calls == [("addheader", "InboxPay-Verdict", "card", -1)]


def test_a_failure_to_count_the_message_does_not_cost_its_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inboxpay.milter.metrics import MilterMetrics

    def broken(self: MilterMetrics, outcome: Outcome) -> None:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr(MilterMetrics, "record", broken)
    monkeypatch.setattr(
        Milter, "factory", functools.partial(InboxPayMilter, Processor(FULL_EDITS), MAX)
    )
    ctx = RecordingCtx()
    connect(ctx)
    transaction(ctx, "b@post.xero.test", ["bob@example.test"], FORGED[:2], b"<p>old</p>\r\n")
    assert ctx._eom() == Milter.ACCEPT
    assert ("addheader", CARD_HEADER, " eyJ.card.sig", -1) in ctx.calls


def test_data_is_answered_while_the_steps_around_it_are_not(
    use_processor: Callable[[Processor], None],
) -> None:
    # Over TCP an unanswered DATA leaves the MTA's next write (the first header) waiting
    # for our kernel's delayed ACK, about 40 ms a message; the answer carries the ACK.
    use_processor(Processor())
    m = connect(RecordingCtx())
    assert not m._protocol & Milter.P_NODATA  # the MTA sends DATA
    assert not m._protocol & Milter.P_NR_DATA  # and waits for the answer
    assert m.data() == Milter.CONTINUE
    for unanswered in (
        Milter.P_NR_CONN, Milter.P_NR_HELO, Milter.P_NR_MAIL, Milter.P_NR_RCPT,
        Milter.P_NR_HDR, Milter.P_NR_BODY,
    ):  # fmt: skip
        assert m._protocol & unanswered


def test_the_bench_null_milter_negotiates_as_inboxpay_does() -> None:
    # bench/: the null milter is the floor only if the protocol is the same.
    from bench.null_milter import NullMilter

    assert NullMilter.protocol_mask() == InboxPayMilter.protocol_mask()
