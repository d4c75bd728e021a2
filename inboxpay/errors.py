"""The root of InboxPay's exception tree; each component derives its own branch.

Every exception class InboxPay defines, indented under its parent, with the module it
lives in (``tests/unit/test_exception_tree.py`` keeps this drawing and the code the same)::

    InboxPayError (errors.py)
        ConfigError (errors.py)
        DeadlineExceeded (deadline.py)
        AddressError (addresses.py), also a ValueError
        CurrencyError (currency.py)
            UnknownCurrency (currency.py), also a KeyError
            InexactAmount (currency.py), also a ValueError
        DNSError (dns.py)
        CardDataError (vault/paymentcard.py)
        CardError (card/header.py)
        VaultError (vault/__init__.py)
        InvalidInvoice (invoice/model.py)
        SignedRequestRefused (invoice/signed.py)
        StoreError (store/model.py)
            RowNotFound (store/model.py)
            WriteConflict (store/model.py)
                AlreadyPaid (store/model.py)
                DuplicatePaymentMethod (store/model.py)
                PaymentFinal (store/model.py)
                IdempotencyInFlight (store/model.py)
                IdempotencyMismatch (store/model.py)
                UniqueViolation (store/database.py)
            AttemptLimit (store/model.py)
        ProcessorError (processor/errors.py)
            ProcessorUnavailable (processor/errors.py)
            ProcessorTimeout (processor/errors.py)
            ProcessorRejected (processor/errors.py)
            MalformedMessage (processor/errors.py)
            SealError (processor/errors.py)
            SandboxError (processor/errors.py)
                LedgerError (processor/errors.py)
                IdempotencyKeyReused (processor/errors.py)
        MilterStartError (milter/main.py)
        MetricsPortError (milter/metrics_http.py)
        ApiError (sidecar/errors.py), an HTTP answer: status, stable code, safe message
            BadRequest (sidecar/errors.py)
            Unauthorized (sidecar/errors.py)
            Forbidden (sidecar/errors.py)
            NotFound (sidecar/errors.py)
            MethodNotAllowed (sidecar/errors.py)
            Conflict (sidecar/errors.py)
            Gone (sidecar/errors.py)
            PayloadTooLarge (sidecar/errors.py)
            UnsupportedMediaType (sidecar/errors.py)
            Unprocessable (sidecar/errors.py)
            TooManyRequests (sidecar/errors.py)
            ServiceUnavailable (sidecar/errors.py)
        SampleError (dev/sample.py)
        DevMtaError (dev/mta.py)

    Internal, never leaving the function that raises it (so outside the tree):

    _TooLarge (invoice/markup.py), control flow of jsonld_blocks

Only the sidecar's answers carry HTTP's names (NotFound, Conflict, ...); the other
components name what went wrong in their own terms (the store's RowNotFound and
WriteConflict). Each component translates lower layers' errors in one place: the
sidecar in ``sidecar/middleware.translate`` (an error no rule covers is a logged 500),
the command in ``cli.main`` (ConfigError exits 2 with one line per problem, any other
InboxPayError exits 1 with one line), and the milter not at all, because
``milter/pipeline.process`` never raises: every error, and DeadlineExceeded, ends in
its fail-safe removal.
"""

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
