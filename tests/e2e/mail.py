"""Sending raw mail to the private Postfix over SMTP and picking it up from a Maildir."""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_QUEUED = re.compile(rb"queued as ([0-9A-Za-z]+)")


@dataclass(frozen=True)
class Client:
    """Who the SMTP server (and so SPF) believes is connecting, set with XCLIENT."""

    addr: str
    helo: str
    name: str = "[UNAVAILABLE]"
    login: str | None = None  # XCLIENT LOGIN: the SASL login name, as after AUTH


def xclient_args(client: Client) -> str:
    args = f"ADDR={client.addr} NAME={client.name} HELO={client.helo}"
    return args if client.login is None else f"{args} LOGIN={client.login}"


@dataclass(frozen=True)
class Delivery:
    queue_id: str
    recipient: str
    raw: bytes


class SmtpError(AssertionError):
    pass


def _expect(code: int, reply: bytes, ok: range, step: str) -> None:
    if code not in ok:
        raise SmtpError(f"{step}: {code} {reply.decode('utf-8', 'replace')}")


def send(
    port: int,
    client: Client,
    mail_from: str,
    rcpt_to: Sequence[str],
    message: bytes,
) -> str:
    """Submit ``message`` exactly as given and return the Postfix queue id."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="harness.test", timeout=60) as smtp:
        _expect(*smtp.ehlo(), range(250, 251), "EHLO")
        args = xclient_args(client)
        _expect(*smtp.docmd("XCLIENT", args), range(220, 221), f"XCLIENT {args}")
        # XCLIENT resets the session to the greeting; Postfix requires EHLO again,
        # and this EHLO is the HELO name the milter and SPF see.
        _expect(*smtp.ehlo(client.helo), range(250, 251), "EHLO after XCLIENT")
        _expect(*smtp.mail(mail_from), range(250, 251), f"MAIL FROM:<{mail_from}>")
        for rcpt in rcpt_to:
            _expect(*smtp.rcpt(rcpt), range(250, 252), f"RCPT TO:<{rcpt}>")
        # smtplib only dot-stuffs and turns line ends into CRLF; the bytes are ours.
        code, reply = smtp.data(message)
        _expect(code, reply, range(250, 251), "DATA")
    found = _QUEUED.search(reply)
    if found is None:
        raise SmtpError(f"DATA reply has no queue id: {reply!r}")
    return found.group(1).decode("ascii")


def header_block(raw: bytes) -> bytes:
    """The header section of a message, up to (not including) the empty line."""
    normalized = raw.replace(b"\r\n", b"\n")
    end = normalized.find(b"\n\n")
    return normalized if end < 0 else normalized[: end + 1]


def _is_queue_id(queue_id: str) -> Callable[[bytes], bool]:
    # Postfix's own Received header says "with ESMTP id QUEUEID".
    pattern = re.compile(rb"\bid " + re.escape(queue_id.encode("ascii")) + rb"\b")
    return lambda raw: pattern.search(header_block(raw)) is not None


def find_in_maildir(maildir: Path, queue_id: str) -> bytes | None:
    matches = _is_queue_id(queue_id)
    new = maildir / "new"
    if not new.is_dir():
        return None
    for path in new.iterdir():
        raw = path.read_bytes()
        if matches(raw):
            return raw
    return None


def wait_for_delivery(
    maildir: Path,
    queue_id: str,
    timeout: float = 20.0,
    postfix_log: Callable[[], str] = lambda: "",
) -> bytes:
    """The delivered bytes of message ``queue_id`` in ``maildir``/new, waiting up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = find_in_maildir(maildir, queue_id)
        if raw is not None:
            return raw
        log = postfix_log()
        # A bounce or a hold will never reach the Maildir: say so at once.
        failed = [
            line
            for line in log.splitlines()
            if queue_id in line and re.search(r"status=(bounced|deferred)|: hold:", line)
        ]
        if failed:
            raise AssertionError(
                f"queue id {queue_id} not delivered to {maildir}:\n" + "\n".join(failed)
            )
        time.sleep(0.05)
    lines = [line for line in postfix_log().splitlines() if queue_id in line]
    raise AssertionError(
        f"queue id {queue_id} not in {maildir}/new after {timeout:.0f} s; its log lines:\n"
        + "\n".join(lines)
    )
