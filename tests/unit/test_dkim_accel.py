"""DKIM through OpenSSL and a key-record cache: the same verdict as dkimpy's own code, always."""

from __future__ import annotations

import base64
import hashlib

import dkim
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxpay.auth import dkim_accel
from inboxpay.auth.dkim import verify_all
from inboxpay.dns import StaticResolver, static_record

MESSAGE = (
    b"From: Billing <billing@post.xero.test>\r\n"
    b"To: bob@inbox.test\r\n"
    b"Subject: Invoice INV-1\r\n"
    b"Message-ID: <1@post.xero.test>\r\n"
    b"\r\n"
    b"Your invoice is attached.\r\n"
)


def _key(bits: int = 2048, exponent: int = 65537) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=exponent, key_size=bits)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return _key()


def _public(key: rsa.RSAPrivateKey) -> dict[str, int]:
    numbers = key.public_key().public_numbers()
    return {"modulus": numbers.n, "publicExponent": numbers.e}


def _digest(name: str, data: bytes = b"message") -> dkim.HashThrough:
    h = dkim.HashThrough(hashlib.new(name))
    h.update(data)
    return h


def _both(h: dkim.HashThrough, signature: bytes, public: dict[str, int]) -> tuple[bool, bool]:
    return (
        dkim_accel.verify(h, signature, public),
        dkim_accel._PURE_PYTHON(h, signature, public),
    )


@pytest.mark.parametrize("name", ["sha256", "sha1"])
def test_a_good_signature_verifies_in_both(key: rsa.RSAPrivateKey, name: str) -> None:
    algorithm = hashes.SHA256() if name == "sha256" else hashes.SHA1()
    signature = key.sign(b"message", padding.PKCS1v15(), algorithm)
    assert _both(_digest(name), signature, _public(key)) == (True, True)


def test_a_flipped_bit_fails_in_both(key: rsa.RSAPrivateKey) -> None:
    signature = bytearray(key.sign(b"message", padding.PKCS1v15(), hashes.SHA256()))
    signature[17] ^= 0x01
    assert _both(_digest("sha256"), bytes(signature), _public(key)) == (False, False)


def test_another_message_fails_in_both(key: rsa.RSAPrivateKey) -> None:
    signature = key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert _both(_digest("sha256", b"other"), signature, _public(key)) == (False, False)


def test_another_key_fails_in_both(key: rsa.RSAPrivateKey) -> None:
    signature = key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert _both(_digest("sha256"), signature, _public(_key())) == (False, False)


def test_a_signature_with_its_leading_zero_byte_dropped_still_verifies(
    key: rsa.RSAPrivateKey,
) -> None:
    # dkimpy reads the signature as an integer, so a signer that drops a leading zero
    # byte still verifies there; OpenSSL needs the full length, which verify() restores.
    for i in range(5000):  # one signature in 256 starts with a zero byte
        data = b"message %d" % i
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if signature[0] == 0:
            break
    else:
        pytest.fail("no signature with a leading zero byte in 5000 messages")
    assert _both(_digest("sha256", data), signature.lstrip(b"\0"), _public(key)) == (True, True)


def test_a_signature_longer_than_the_modulus_fails(key: rsa.RSAPrivateKey) -> None:
    signature = key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert dkim_accel.verify(_digest("sha256"), b"\x01" + signature, _public(key)) is False


def test_a_small_key_is_left_to_dkimpy() -> None:
    # Below 512 bits dkimpy raises its own error about the digest; so must we.
    tiny = {"modulus": (1 << 383) + 1, "publicExponent": 65537}
    with pytest.raises(dkim.crypto.DigestTooLargeError):
        dkim_accel.verify(_digest("sha256"), b"\x01" * 48, tiny)


def test_install_routes_dkimpy_through_the_accelerated_functions() -> None:
    dkim_accel.install()
    assert dkim.RSASSA_PKCS1_v1_5_verify is dkim_accel.verify
    assert dkim.evaluate_pk is dkim_accel.evaluate_pk
    assert dkim.RE_BTAG is dkim_accel.RE_BTAG
    canonicalization = dkim.canonicalization
    assert canonicalization.compress_whitespace is dkim_accel.compress_whitespace
    assert canonicalization.strip_trailing_whitespace is dkim_accel.strip_trailing_whitespace
    assert canonicalization.unfold_header_value is dkim_accel.unfold_header_value


# What a body or field value is made of, as far as relaxed canonicalization cares.
_CANON_PIECES = st.sampled_from(
    [b" ", b"  ", b"\t", b" \t ", b"\r", b"\n", b"\r\n", b"\r\n ", b" \r\n", b"\t\r\n",
     b"a", b"<p>", b"\x0b", b"\x0c", b"\xa0", b"\xff", b"\r\r\n", b"\n\t"]
)  # fmt: skip


@settings(max_examples=2000)
@given(st.lists(_CANON_PIECES, max_size=60).map(b"".join))
def test_the_canonicalization_helpers_give_exactly_what_dkimpys_give(content: bytes) -> None:
    assert dkim_accel.compress_whitespace(content) == dkim_accel._COMPRESS_WHITESPACE(content)
    assert dkim_accel.strip_trailing_whitespace(content) == (
        dkim_accel._STRIP_TRAILING_WHITESPACE(content)
    )
    assert dkim_accel.unfold_header_value(content) == dkim_accel._UNFOLD_HEADER_VALUE(content)


def test_a_relaxed_body_canonicalizes_as_dkimpys_own() -> None:
    body = b"<p>Amount  due:\t 1 200.00 </p> \r\n\r\n\tPay  by\r\n 3 Dec\t\r\n\r\n\r\n"
    relaxed = dkim.canonicalization.Relaxed
    dkim_accel.install()
    ours = relaxed.canonicalize_body(body)
    try:
        dkim.canonicalization.compress_whitespace = dkim_accel._COMPRESS_WHITESPACE
        dkim.canonicalization.strip_trailing_whitespace = dkim_accel._STRIP_TRAILING_WHITESPACE
        theirs = relaxed.canonicalize_body(body)
    finally:
        dkim_accel.install()
    assert ours == theirs == b"<p>Amount due: 1 200.00 </p>\r\n\r\n Pay by\r\n 3 Dec\r\n"


# What a DKIM-Signature value is made of, and what could confuse the b= pattern.
_BTAG_PIECES = st.sampled_from(
    [b"b", b"B", b"=", b";", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n ", b"bh", b"a", b"Z9",
     b"+", b"/", b"-", b"h=", b"\x0b", b"\x0c", b"\xff", b"b=", b"; b=", b" b =\r\n\t"]
)  # fmt: skip


@settings(max_examples=2000)
@given(st.lists(_BTAG_PIECES, max_size=40).map(b"".join))
def test_the_b_tag_pattern_blanks_exactly_what_dkimpys_does(value: bytes) -> None:
    assert dkim_accel.RE_BTAG.sub(b"\\1", value) == dkim_accel._RE_BTAG.sub(b"\\1", value)


# RFC 6376 Appendix A.2, the published example signature, folded as printed there.
RFC6376_SIGNATURE = (
    b" v=1; a=rsa-sha256; s=brisbane; d=example.com;\r\n"
    b"      c=simple/simple; q=dns/txt; i=joe@football.example.com;\r\n"
    b"      h=Received : From : To : Subject : Date : Message-ID;\r\n"
    b"      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XJkfJVGzv8=;\r\n"
    b"      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB\r\n"
    b"        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut\r\n"
    b"        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV\r\n"
    b"        4bmp/YzhwvcubU4=;\r\n"
)


def test_the_b_tag_pattern_blanks_rfc_6376s_example_signature() -> None:
    blanked = dkim_accel.RE_BTAG.sub(b"\\1", RFC6376_SIGNATURE)
    assert blanked == dkim_accel._RE_BTAG.sub(b"\\1", RFC6376_SIGNATURE)
    # The value and its folding go; the tag, bh= and the closing ";" stay.
    assert blanked.endswith(b"\r\n      b=;\r\n")
    assert b"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XJkfJVGzv8=;" in blanked


def test_the_b_tag_pattern_blanks_a_real_folded_signature(key: rsa.RSAPrivateKey) -> None:
    field = _signed(key)[: -len(MESSAGE)].split(b":", 1)[1]  # the DKIM-Signature value
    folded = field.replace(b"b=", b"b =\r\n\t ", 1)
    for value in (field, folded, field + b"\r\n"):
        blanked = dkim_accel.RE_BTAG.sub(b"\\1", value)
        assert blanked == dkim_accel._RE_BTAG.sub(b"\\1", value)
        assert blanked.rstrip().endswith(b"=")  # the value is gone, the tag stays


def _signed(key: rsa.RSAPrivateKey) -> bytes:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signature = dkim.sign(MESSAGE, b"s1", b"post.xero.test", pem, include_headers=[b"from"])
    return bytes(signature) + MESSAGE


def _record(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")


def _resolver(record: str) -> StaticResolver:
    return StaticResolver([static_record("s1._domainkey.post.xero.test", "TXT", record)])


def test_end_to_end_pass_and_tamper(key: rsa.RSAPrivateKey) -> None:
    signed = _signed(key)
    (ok,) = verify_all(signed, _resolver(_record(key)), 5)
    (bad,) = verify_all(signed.replace(b"attached", b"attacked"), _resolver(_record(key)), 5)
    assert (ok.result, bad.result) == ("pass", "fail")


def test_a_rotated_key_record_is_read_again_not_served_from_the_cache(
    key: rsa.RSAPrivateKey,
) -> None:
    signed = _signed(key)
    assert verify_all(signed, _resolver(_record(key)), 5)[0].result == "pass"
    # The sender publishes a new key under the same selector: the old signature fails.
    (after,) = verify_all(signed, _resolver(_record(_key())), 5)
    assert after.result == "fail"


def test_a_broken_key_record_fails_every_time_and_is_not_cached(key: rsa.RSAPrivateKey) -> None:
    signed = _signed(key)
    cached = dkim_accel.evaluate_pk.cache_info().currsize
    for _ in range(2):
        (result,) = verify_all(signed, _resolver("v=DKIM1; k=rsa; p=AAAA"), 5)
        assert result.result == "fail"  # dkimpy reports an unusable key as a failed check
    assert dkim_accel.evaluate_pk.cache_info().currsize == cached
