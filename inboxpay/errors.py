"""The root of InboxPay's exception tree; each component derives its own branch."""

from __future__ import annotations


class InboxPayError(Exception):
    """Base class of every error InboxPay raises on purpose."""


class ConfigError(InboxPayError):
    """A configuration file is missing, unreadable or has bad values; each line names a key.

    ``ConfigError("[dns] port: must be 1..65535")`` is one problem; a config with several
    is one ConfigError listing them all (``errors``), one per line of the message.
    """

    def __init__(self, *errors: str) -> None:
        super().__init__(*errors)  # args stay the messages, so the error pickles intact

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(str(a) for a in self.args)

    def __str__(self) -> str:
        return "\n".join(self.errors)
