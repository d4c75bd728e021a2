"""The e2e suite's private Postfix: ``inboxpay/dev/mta.py`` with the harness's conventions.

Everything (config, queue, data, log under ``postfix/``; Maildirs under ``mail/``) lives in
the test's work directory, smtpd listens on 127.0.0.1 only, and the milter is reached on
127.0.0.1 at the port the test gives. The generic logic is in :mod:`inboxpay.dev.mta`,
which ``inboxpay dev-mta`` runs for development.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

from inboxpay.dev import mta as devmta
from inboxpay.dev.mta import DevMta, milter_warnings

from .procs import require_program

SNIPPET = devmta.SNIPPET

__all__ = ["SNIPPET", "PrivatePostfix", "milter_snippet", "milter_warnings"]


def milter_snippet(milter_port: int, snippet: Traversable = SNIPPET) -> str:
    """The shipped snippet with only the milter socket replaced by the test's."""
    return devmta.milter_snippet(f"inet:127.0.0.1:{milter_port}", snippet)


class PrivatePostfix(DevMta):
    """Runs ``postfix -c CONFIG start`` on a generated config; mail lands in Maildirs."""

    def __init__(
        self,
        workdir: Path,
        smtp_port: int,
        milter_port: int,
        hostname: str,
        recipients: tuple[str, ...],
    ) -> None:
        # Fail (never skip, never a bare error) when Postfix is not installed.
        require_program("postfix", "apt-get install postfix")
        super().__init__(
            workdir / devmta.POSTFIX_FOLDER,
            listen=f"127.0.0.1:{smtp_port}",
            milter=f"inet:127.0.0.1:{milter_port}",
            hostname=hostname,
            mailboxes={r: workdir / devmta.MAIL_FOLDER / r.lower() for r in recipients},
            purpose="tests",
        )
        self.milter_port = milter_port
        self.recipients = recipients
