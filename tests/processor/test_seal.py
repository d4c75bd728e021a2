"""JWE sealing: only the processor key opens it, and nothing leaks when it does not."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey

from inboxpay.processor.errors import SealError
from inboxpay.processor.seal import ALG, ENC, key_id, open_card, seal_card

from .helpers import HOLDER, card

NUMBER = "4242424242424242"


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def public(key: ECKey) -> ECKey:
    return ECKey.import_key(key.as_dict(private=False))


def header_of(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(data, dict)
    return data


def test_seal_and_open(key: ECKey) -> None:
    token = seal_card(card(NUMBER), public(key))
    assert token.count(".") == 4
    assert NUMBER not in token and HOLDER not in token
    header = header_of(token)
    assert header["alg"] == ALG and header["enc"] == ENC and header["kid"] == key.thumbprint()
    assert set(header) == {"alg", "enc", "kid", "epk"}
    assert open_card(token, key) == card(NUMBER)


def test_each_seal_is_different(key: ECKey) -> None:
    assert seal_card(card(), public(key)) != seal_card(card(), public(key))


def test_sealed_to_another_key(key: ECKey) -> None:
    other = ECKey.generate_key("P-256", private=True)
    with pytest.raises(SealError, match="another key"):
        open_card(seal_card(card(), public(other)), key)


def test_kid_claimed_but_sealed_to_another_key(key: ECKey) -> None:
    other = ECKey.import_key({**public(ECKey.generate_key("P-256")).as_dict(), "kid": key_id(key)})
    with pytest.raises(SealError, match="does not decrypt"):
        open_card(seal_card(card(), other), key)


def test_tampered_ciphertext(key: ECKey) -> None:
    parts = seal_card(card(), public(key)).split(".")
    parts[3] = ("A" if parts[3][0] != "A" else "B") + parts[3][1:]
    with pytest.raises(SealError):
        open_card(".".join(parts), key)


def test_compressed_payload_is_refused(key: ECKey) -> None:
    header = {"alg": ALG, "enc": ENC, "kid": key_id(key), "zip": "DEF"}
    token = jwe.encrypt_compact(header, b"{}", public(key), algorithms=[ALG, ENC, "DEF"])
    with pytest.raises(SealError, match="header"):
        open_card(token, key)


def test_plaintext_that_is_not_a_card_leaves_no_trace(key: ECKey) -> None:
    header = {"alg": ALG, "enc": ENC, "kid": key_id(key)}
    for plaintext in (f'{{"number": "{NUMBER}", "cvc": "123"'.encode(), b'{"number": "x"}'):
        token = jwe.encrypt_compact(header, plaintext, public(key), algorithms=[ALG, ENC])
        with pytest.raises(SealError) as e:
            open_card(token, key)
        assert NUMBER not in str(e.value)
        assert e.value.__cause__ is None and e.value.__suppress_context__


def test_seal_needs_a_p256_key() -> None:
    with pytest.raises(SealError):
        seal_card(card(), ECKey.generate_key("P-384", private=False))
