"""DEVELOPMENT ONLY: what ``make run``, the tests and a newcomer's first run need, and
production never imports.

- :mod:`.init`: ``inboxpay init``, a working development configuration with fresh keys;
- :mod:`.sample`: ``inboxpay send-sample``, a signed sample invoice from the ``sample``
  partner;
- :mod:`.mta`: ``inboxpay dev-mta``, a private Postfix with the milter attached;
- :mod:`.demo`: the sidecar's demo inbox at ``/demo/`` (with ``static/``), mounted only
  when ``[sidecar] demo_maildir`` is set.

The CLI and the sidecar import these lazily, only for those commands and that setting.
The sandbox processor is :mod:`inboxpay.processor.sandbox`.
"""

#: Where ``inboxpay dev-mta``'s smtpd listens unless ``--listen`` says otherwise; here so
#: that the CLI can show it without importing :mod:`.mta`.
DEFAULT_MTA_LISTEN = "127.0.0.1:2525"
