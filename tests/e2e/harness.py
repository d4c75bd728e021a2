"""What a test talks to: send raw mail, get every recipient's delivered copy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .mail import Client, Delivery, send, wait_for_delivery
from .milterproc import CardKeys, MilterProcess, Setting
from .postfix import PrivatePostfix
from .procs import free_port
from .world import AUTHSERV_ID, RECIPIENTS, DkimKey


@dataclass(frozen=True)
class Mta:
    postfix: PrivatePostfix
    card_keys: CardKeys
    dkim: dict[str, DkimKey]

    def deliver(
        self,
        message: bytes,
        client: Client,
        mail_from: str,
        rcpt_to: Sequence[str],
    ) -> list[Delivery]:
        """Send ``message`` and wait for each recipient's copy, in ``rcpt_to`` order."""
        log_start = self.postfix.log_size()
        queue_id = send(self.postfix.smtp_port, client, mail_from, rcpt_to, message)
        return [
            Delivery(
                queue_id,
                rcpt,
                wait_for_delivery(
                    self.postfix.maildir(rcpt),
                    queue_id,
                    postfix_log=lambda: self.postfix.log_since(log_start),
                ),
            )
            for rcpt in rcpt_to
        ]

    def deliver_one(self, message: bytes, client: Client, mail_from: str, rcpt: str) -> Delivery:
        return self.deliver(message, client, mail_from, [rcpt])[0]


@dataclass(frozen=True)
class Instance:
    """A milter with its own settings and a Postfix of its own in front of it."""

    mta: Mta
    milter: MilterProcess


@contextmanager
def private_instance(
    workdir: Path,
    dns_port: int,
    dkim: dict[str, DkimKey],
    milter: Mapping[str, Setting] | None = None,
    dns: Mapping[str, Setting] | None = None,
) -> Iterator[Instance]:
    """Start a second milter (config keys overridden by ``milter`` and ``dns``) and its Postfix.

    Its files live in ``workdir`` (created here), apart from the session's instance.
    """
    workdir.mkdir()
    workdir.chmod(0o755)
    process = MilterProcess(workdir, free_port(), AUTHSERV_ID, dns_port, milter, dns)
    postfix = PrivatePostfix(workdir, free_port(), process.port, AUTHSERV_ID, RECIPIENTS)
    try:
        card_keys = process.start()
        postfix.start()
        yield Instance(Mta(postfix, card_keys, dkim), process)
    finally:
        postfix.stop()
        process.stop()
