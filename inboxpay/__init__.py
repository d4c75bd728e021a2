"""InboxPay: pay an invoice straight from the inbox, safely."""

__version__ = "0.1.0"
