"""The root of InboxPay's exception tree; each component derives its own branch."""


class InboxPayError(Exception):
    """Base class of every error InboxPay raises on purpose."""


class ConfigError(InboxPayError):
    """A configuration file is missing, unreadable or has a bad value; the message names the key."""
