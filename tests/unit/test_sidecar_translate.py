"""The sidecar's one table from lower layers' errors to HTTP answers (issue 13, item 4):
each answer's status, code and message are part of the API and must not move."""

from __future__ import annotations

import pytest

from inboxpay.card.header import CardError
from inboxpay.sidecar.middleware import translate
from inboxpay.store import model
from inboxpay.store.database import UniqueViolation
from inboxpay.vault import VaultError
from inboxpay.vault.paymentcard import CardDataError

CASES = [
    (model.RowNotFound("no payment p1"), 404, "not_found", "no such object"),
    (
        model.IdempotencyInFlight("k"),
        409,
        "idempotency_in_progress",
        "a request with this Idempotency-Key is in progress",
    ),
    (
        model.IdempotencyMismatch("k"),
        422,
        "idempotency_mismatch",
        "this Idempotency-Key was used with another request",
    ),
    (
        model.AlreadyPaid("held"),
        409,
        "already_paid",
        "this invoice is already paid or being paid",
    ),
    (
        model.DuplicatePaymentMethod("fp"),
        409,
        "duplicate_payment_method",
        "this card is already saved",
    ),
    (model.PaymentFinal("p1"), 409, "conflict", "the request conflicts with the current state"),
    (UniqueViolation("x_key"), 409, "conflict", "the request conflicts with the current state"),
    (model.AttemptLimit("cvc"), 503, "store_unavailable", "the store is unavailable; try again"),
    (model.StoreError("down"), 503, "store_unavailable", "the store is unavailable; try again"),
    (CardError("malformed_card", "card is bad"), 400, "malformed_card", "card is bad"),
    (CardError("bad_signature", "no"), 422, "bad_signature", "no"),
    (CardDataError("invalid_security_code", "wrong"), 400, "invalid_security_code", "wrong"),
]


@pytest.mark.parametrize(("error", "status", "code", "message"), CASES)
def test_lower_layer_errors_become_stable_answers(
    error: Exception, status: int, code: str, message: str
) -> None:
    answer = translate(error)
    assert answer is not None
    assert (answer.status, answer.code, answer.message) == (status, code, message)


@pytest.mark.parametrize("error", [VaultError("cannot open"), RuntimeError("bug"), KeyError("k")])
def test_anything_else_is_left_to_the_logged_500(error: Exception) -> None:
    assert translate(error) is None
