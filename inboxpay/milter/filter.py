"""The pymilter protocol layer: record facts in the callbacks, apply the pipeline's edits at eom.

Every callback but ``eom`` always continues, so it is marked ``@Milter.noreply``
(over an inet socket a reply per header costs a round trip), except ``data``, whose
answer spares a delayed-ACK wait over TCP (see ``data``). Nothing in here
rejects or holds mail: any failure still accepts the message, at worst with only
forged cards removed.

Each callback adds its duration to its stage's total for the message; the totals are
observed once per message, at eom (a histogram observation per header cost more than
the header). The message is counted once, at eom.
The MTA's queue id (macro ``i``) is bound to the log context as soon as the MTA
gives it, so every line logged for the message, by any module, carries it.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from time import perf_counter
from typing import IO, Any

import Milter

from inboxpay import logs
from inboxpay.message import RawMessage
from inboxpay.milter.edits import Edits, strip_forged_cards
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.metrics import MilterMetrics
from inboxpay.milter.pipeline import Outcome

_log = logging.getLogger(__name__)

_BODY_CHUNK = 65536

Processor = Callable[[MessageFacts], Outcome]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


Callback = Callable[..., int]


def _timed(stage: str) -> Callable[[Callback], Callback]:
    """Add the callback's duration to ``stage``'s total for this message (innermost:
    pymilter's decorators read the method's name and attributes)."""

    def decorate(func: Callback) -> Callback:
        @functools.wraps(func)
        def timed(self: InboxPayMilter, *args: Any) -> int:
            started = perf_counter()
            try:
                return func(self, *args)
            finally:
                spent = self._spent
                spent[stage] = spent.get(stage, 0.0) + perf_counter() - started

        return timed

    return decorate


class _Body:
    """The body as it arrives: chunks in memory up to ``limit`` bytes, past it a file.

    A message too large to authenticate is still scanned, so that its markup can be
    removed: it is kept whole, on disk rather than in memory.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self.size = 0
        self._file: IO[bytes] | None = None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
            return
        self._chunks.append(chunk)
        if self.size > self._limit:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - open until close()
            self._file.writelines(self._chunks)
            self._chunks = []

    def read(self) -> bytes:
        if self._file is None:
            return b"".join(self._chunks)
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks = []


# Keep header continuation lines and their leading space exactly as received (DKIM).
@Milter.header_leading_space
class InboxPayMilter(Milter.Base):  # type: ignore[misc]
    """One SMTP connection; may carry several messages."""

    def __init__(
        self, process: Processor, max_message_bytes: int, metrics: MilterMetrics | None = None
    ) -> None:
        self._process = process
        self._max = max_message_bytes
        self._metrics = metrics if metrics is not None else MilterMetrics()
        self._timers = self._metrics.callbacks
        self._client_ip = ""
        self._client_name = ""
        self._helo = ""
        self._queue_id = ""
        self._facts = MessageFacts()
        self._body = _Body(max_message_bytes)
        self._spent: dict[str, float] = {}  # stage -> seconds in our code, this message

    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("connect")
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        self._client_name = _text(hostname)
        # inet and inet6 give (address, port, ...); a unix-socket client gives no address.
        if isinstance(hostaddr, tuple) and hostaddr:
            self._client_ip = str(hostaddr[0])
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("helo")
    def hello(self, heloname: str) -> int:
        self._helo = _text(heloname)
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("envfrom")
    def envfrom(self, mailfrom: str, *params: str) -> int:
        # A new transaction on this connection: start from a clean slate.
        self._queue_id = ""
        logs.unbind()
        self._find_queue_id()  # Sendmail, or Postfix with smtpd_delay_open_until_valid_rcpt=no
        self._facts = MessageFacts(
            client_ip=self._client_ip,
            client_name=self._client_name,
            helo=self._helo,
            mail_from=_text(mailfrom).strip().strip("<>"),
            authenticated=bool(self.getsymval("{auth_authen}")),
        )
        self._body.close()
        self._body = _Body(self._max)
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("envrcpt")
    def envrcpt(self, to: str, *params: str) -> int:
        if not self._queue_id:
            self._find_queue_id()  # Postfix opens the queue file at the first valid RCPT
        self._facts.recipients.append(_text(to).strip().strip("<>"))
        return Milter.CONTINUE  # type: ignore[no-any-return]

    # decode() must be outermost: noreply's wrapper would hide the attribute it sets.
    @Milter.decode("bytes")  # type: ignore[untyped-decorator]
    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("header")
    def header(self, name: str, value: bytes) -> int:
        raw_name = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
        if not self._protocol & Milter.P_HDR_LEADSPC:
            value = b" " + value  # an MTA without HDR_LEADSPC strips the space after the colon
        self._facts.message.headers.append((raw_name, value))
        return Milter.CONTINUE  # type: ignore[no-any-return]

    # No eoh: not defined, pymilter asks the MTA not to send it (one callback fewer).

    def data(self) -> int:
        """Answered, unlike the steps around it: over TCP the MTA's first write of the
        headers would otherwise wait for our kernel's delayed ACK of its DATA command
        (Nagle on the MTA's side), about 40 ms per message. The answer carries the ACK;
        it costs one round trip, the same on a unix socket (docs/operations.md)."""
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    @_timed("body")
    def body(self, chunk: bytes) -> int:
        self._body.write(chunk)
        if self._body.size > self._max:
            self._facts.truncated = True
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def eom(self) -> int:
        started = perf_counter()
        try:
            return self._eom()
        finally:
            self._observe_spent(perf_counter() - started)

    def _observe_spent(self, eom: float | None = None) -> None:
        """Observe the time per stage gathered since the last time (a message, or a
        connection's connect and helo), and ``eom``'s."""
        timers = self._timers
        spent = self._spent
        for stage, seconds in spent.items():
            timers[stage].observe(seconds)
        spent.clear()
        if eom is not None:
            timers["eom"].observe(eom)

    def _eom(self) -> int:
        facts = self._facts
        facts.message = RawMessage(facts.message.headers, self._body.read())
        if self._queue_id:
            logs.bind(queue_id=self._queue_id)  # again, in whatever thread state eom runs
        else:
            self._find_queue_id()  # an MTA that names it only at end of message
        facts.queue_id = self._queue_id
        outcome: Outcome | None = None
        try:
            outcome = self._process(facts)  # never raises: it has a fail-safe path of its own
            edits = outcome.edits
        except Exception:  # noqa: BLE001 - mail is never held for a payment reason
            self._metrics.failed()
            _log.exception("the fail-safe path failed; delivering with forged cards removed")
            edits = strip_forged_cards(facts.message)
        self._apply(edits)
        if outcome is not None:
            self._report(outcome)
        self._reset()
        return Milter.ACCEPT  # type: ignore[no-any-return]

    def _report(self, outcome: Outcome) -> None:
        # After the edits, and guarded on its own: counting must never cost the card.
        try:
            self._metrics.record(outcome)
            _log.info(
                "message processed",
                extra={"verdict": outcome.verdict.header or outcome.verdict.action.value},
            )
        except Exception:  # noqa: BLE001 - the message is already decided and edited
            _log.exception("could not count the message")

    def _find_queue_id(self) -> None:
        queue_id = self.getsymval("i")
        if queue_id:
            self._queue_id = _text(queue_id)
            logs.bind(queue_id=self._queue_id)

    def _apply(self, edits: Edits) -> None:
        try:
            for name, idx in edits.delete:
                self.chgheader(name, idx, "")
            # With HDR_LEADSPC the MTA writes values verbatim: give it the usual space.
            lead = " " if self._protocol & Milter.P_HDR_LEADSPC else ""
            for name, value in reversed(edits.insert_top):
                self.addheader(name, lead + value, 0)
            for name, value in edits.append:
                self.addheader(name, lead + value)
            if edits.body is not None:
                for i in range(0, len(edits.body), _BODY_CHUNK):
                    self.replacebody(edits.body[i : i + _BODY_CHUNK])
        except Exception:  # noqa: BLE001 - the MTA refused an edit; still accept the mail
            _log.exception("could not apply edits")

    def abort(self) -> int:
        self._observe_spent()
        self._reset()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def close(self) -> int:
        self._observe_spent()
        self._reset()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def _reset(self) -> None:
        self._facts = MessageFacts()
        self._body.close()
        self._body = _Body(self._max)
        self._queue_id = ""
        logs.unbind()
