"""The sandbox processor (development and staging only): protocol v1 with test cards.

:mod:`.server` is the HTTP service (``inboxpay processor-sandbox``), :mod:`.cards` the
test cards and their outcomes, :mod:`.ledger` its own SQLite ledger, :mod:`.page` the
3-D Secure challenge page and :mod:`.settings` its ``[sandbox]`` settings. The sidecar
never imports it; only the ``processor-sandbox`` command and tests do.
"""
