"""What a test talks to: send raw mail, get every recipient's delivered copy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .mail import Client, Delivery, send, wait_for_delivery
from .milterproc import CardKeys
from .postfix import PrivatePostfix
from .world import DkimKey


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
