"""addresses.normalize, the one rule for "the same person": ASCII case folds, Unicode case
never does, and a local part that Unicode lower-casing would change is kept as written
(and refused for users who sign in)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from inboxpay import addresses
from inboxpay.card.header import recipient_hash

KEY = b"k" * 32
KELVIN = "\u212a"  # KELVIN SIGN: str.lower() makes it a plain "k"


def old_hash(address: str) -> str:
    """The recipient hash as every card issued so far has it, for ASCII addresses."""
    digest = hmac.new(KEY, address.strip().lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_kelvin_sign_is_not_a_k() -> None:
    assert KELVIN.lower() == "k"  # what the old rule did with it
    kelvin = f"{KELVIN}ate@client.example"
    assert addresses.normalize(kelvin) != addresses.normalize("kate@client.example")
    assert recipient_hash(KEY, kelvin) != recipient_hash(KEY, "kate@client.example")
    assert addresses.normalize(f"{KELVIN}ATE@Client.Example.") == f"{KELVIN}ATE@client.example"


@pytest.mark.parametrize(
    "address", ["Kate@Client.Example", "kate@client.example", "KATE@CLIENT.EXAMPLE", " a.b+c@x.io "]
)
def test_ascii_addresses_hash_as_they_always_did(address: str) -> None:
    assert recipient_hash(KEY, address) == old_hash(address)


@pytest.mark.parametrize(
    ("address", "normal"),
    [
        ("äna@X.Example", "äna@x.example"),  # no case to fold: lower-cased ASCII only
        ("ÄNA@x.example", "ÄNA@x.example"),  # "Ä" would fold: kept exactly as written
        ("\u0130lke@x.example", "\u0130lke@x.example"),  # İ lower-cases to two characters
        (f"ana@{KELVIN}example.com", "ana@kexample.com"),  # IDNA's mapping, as DNS reads it
        ("ana@BÜCHER.example", "ana@xn--bcher-kva.example"),
    ],
)
def test_unicode_local_parts_and_domains(address: str, normal: str) -> None:
    assert addresses.normalize(address) == normal
    assert addresses.normalize(normal) == normal  # normalised once is normalised


@pytest.mark.parametrize(
    "address", [f"{KELVIN}ate@client.example", "ÄNA@x.example", "\u0130lke@x.example", "nobody"]
)
def test_who_cannot_sign_in(address: str) -> None:
    with pytest.raises(addresses.AddressError):
        addresses.signed_in(address)


def test_who_signs_in_is_normalised() -> None:
    assert addresses.signed_in(" Kate@Client.Example ") == "kate@client.example"
    assert addresses.signed_in("äna@Bücher.example") == "äna@xn--bcher-kva.example"
