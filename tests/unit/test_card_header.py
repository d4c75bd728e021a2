"""The card format: sign, fold, verify; every way a card can be wrong."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from inboxpay.card.header import CardError, CardSigner, CardVerifier, fold, recipient_hash
from inboxpay.card.keys import kid_of, public_jwk

_KEY = OKPKey.generate_key("Ed25519", private=True)


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return _KEY


def verifier_for(key: OKPKey) -> CardVerifier:
    return CardVerifier([OKPKey.import_key(public_jwk(key, kid_of(key)))])


def test_folded_card_verifies_after_whitespace_removal(key: OKPKey) -> None:
    value = CardSigner(key, kid_of(key)).sign({"v": 1, "jti": "x"})
    folded = fold(value)
    assert "\n\t" in folded and all(len(line) <= 76 for line in folded.split("\n\t"))
    claims = verifier_for(key).verify(" " + folded.replace("\n\t", "\r\n \t") + " ")
    assert claims == {"v": 1, "jti": "x"}


_CLAIMS = st.dictionaries(
    st.text(max_size=12),
    st.one_of(st.integers(), st.text(max_size=40), st.booleans(), st.none()),
    max_size=8,
)


@given(claims=_CLAIMS, kid=st.text(min_size=1, max_size=30))
def test_a_card_is_byte_for_byte_the_jws_joserfc_makes(claims: dict[str, object], kid: str) -> None:
    # Ed25519 signatures are deterministic: the same key, header and payload give the same
    # bytes, so the signer's own assembly can be held to the library's.
    key = _KEY
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    header = {"alg": "EdDSA", "kid": kid, "typ": "inboxpay-card+jws"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RFC 9864's deprecation of the name "EdDSA"
        expected = jws.serialize_compact(header, payload.encode(), key, algorithms=["EdDSA"])
    assert CardSigner(key, kid).sign(claims) == expected


def test_header_is_eddsa_with_kid(key: OKPKey) -> None:
    value = CardSigner(key, kid_of(key)).sign({"v": 1})
    header = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA" and header["kid"] == kid_of(key)


def test_unknown_kid(key: OKPKey) -> None:
    value = CardSigner(key, "someone-else").sign({"v": 1})
    with pytest.raises(CardError) as e:
        verifier_for(key).verify(value)
    assert e.value.code == "unknown_kid"


def test_signature_by_another_key_with_our_kid(key: OKPKey) -> None:
    other = OKPKey.generate_key("Ed25519", private=True)
    value = CardSigner(other, kid_of(key)).sign({"v": 1})
    with pytest.raises(CardError) as e:
        verifier_for(key).verify(value)
    assert e.value.code == "bad_signature"


def test_tampered_payload(key: OKPKey) -> None:
    h, _p, s = CardSigner(key, kid_of(key)).sign({"v": 1, "amount": "1.00"}).split(".")
    forged = base64.urlsafe_b64encode(b'{"amount":"9.00","v":1}').rstrip(b"=").decode()
    with pytest.raises(CardError) as e:
        verifier_for(key).verify(f"{h}.{forged}.{s}")
    assert e.value.code == "bad_signature"


@pytest.mark.parametrize("value", ["", "abc", "a.b", "!!!.???.***", "e30.e30.e30"])
def test_malformed(key: OKPKey, value: str) -> None:
    with pytest.raises(CardError) as e:
        verifier_for(key).verify(value)
    assert e.value.code == "malformed_card"


def test_alg_none_is_refused(key: OKPKey) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid_of(key)}).encode())
    payload = base64.urlsafe_b64encode(b'{"v":1}')
    with pytest.raises(CardError):
        verifier_for(key).verify(
            header.decode().rstrip("=") + "." + payload.decode().rstrip("=") + "."
        )


def test_wrong_version(key: OKPKey) -> None:
    with pytest.raises(CardError, match="version 1"):
        verifier_for(key).verify(CardSigner(key, kid_of(key)).sign({"v": 2}))


def test_recipient_hash_is_case_insensitive_and_keyed() -> None:
    assert recipient_hash(b"k" * 32, "Bob@Example.ORG") == recipient_hash(
        b"k" * 32, "bob@example.org"
    )
    assert recipient_hash(b"k" * 32, "bob@example.org") != recipient_hash(
        b"j" * 32, "bob@example.org"
    )
    assert "bob" not in recipient_hash(b"k" * 32, "bob@example.org")
