"""Hot spots of dkimpy made cheap, without changing a single verdict.

dkimpy verifies RSA signatures with Python integers: about 450 us per signature,
the largest single cost of the milter. The same RSASSA-PKCS1-v1_5 check in OpenSSL
(cryptography) takes about 30 us. dkimpy also parses the key record's ASN.1 in Python
for every message, although a sender signs thousands with one key.

And it blanks the signature's b= value with a regular expression that tries its
folding-whitespace alternatives at every character of the value (about 37 us a
signature); :data:`RE_BTAG` matches exactly the same strings in one scan (5 us).

Its relaxed canonicalization rewrites every single space of the body as a space and
tries a trailing-whitespace match at each one (80 us for the 3 KB body of the bench invoice):
:func:`compress_whitespace` leaves lone spaces alone and :func:`strip_trailing_whitespace`
and :func:`unfold_header_value` return what has nothing to change (28 us).

dkimpy looks ``RSASSA_PKCS1_v1_5_verify``, ``evaluate_pk``, ``RE_BTAG`` and the
canonicalization helpers up in their module namespaces at call time, so :func:`install`
replaces them there with ones of the same contract; dkimpy keeps doing everything else
(tags, the rest of canonicalization, hashes, DNS through our resolver, minimum key
size). A key OpenSSL will not load falls back to dkimpy's own arithmetic.
tests/unit/test_dkim_accel.py checks each against dkimpy's own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Protocol

import dkim
import dkim.canonicalization
import dkim.crypto
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

_PURE_PYTHON: Callable[..., bool] = dkim.crypto.RSASSA_PKCS1_v1_5_verify
_EVALUATE_PK: Callable[[bytes, bytes | str | None], tuple[Any, ...]] = dkim.evaluate_pk
_RE_BTAG: re.Pattern[bytes] = dkim.RE_BTAG
# dkimpy's pattern is "([;\s]b" FWS "=)(?:" FWS "[a-zA-Z0-9+/=])*(?:\r?\n\Z)?" with
# FWS = (?:(?:\s*\r?\n)?\s+)?, which matches any run of whitespace, the empty one
# included: so the tag is b, whitespace, "=", then the longest run of whitespace and
# base64 characters that ends in a base64 character, then a line end closing the field.
RE_BTAG = re.compile(rb"([;\s]b\s*=)(?:[\sa-zA-Z0-9+/=]*[a-zA-Z0-9+/=])?(?:\r?\n\Z)?")
_COMPRESS_WHITESPACE: Callable[[bytes], bytes] = dkim.canonicalization.compress_whitespace
_STRIP_TRAILING_WHITESPACE: Callable[[bytes], bytes] = (
    dkim.canonicalization.strip_trailing_whitespace
)
_UNFOLD_HEADER_VALUE: Callable[[bytes], bytes] = dkim.canonicalization.unfold_header_value
# dkimpy's "[\t ]+" -> " ", less the runs that are a lone space already (a no-op there):
# a run starting with a tab, or a space and at least one more.
_WSP_TO_COMPRESS = re.compile(rb"\t[\t ]*| [\t ]+")
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")
_LINE_BREAK = re.compile(rb"\r?\n")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}
# Below this dkimpy raises its own "digest too large for modulus" error: let it.
_MIN_BITS = 512
# Distinct DKIM keys seen recently; a key is a few hundred bytes.
_KEY_CACHE_SIZE = 4096


class _Hash(Protocol):
    name: str

    def digest(self) -> bytes: ...


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def _public_key(modulus: int, exponent: int) -> rsa.RSAPublicKey | None:
    try:
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None  # OpenSSL refuses it (odd sizes, tiny exponents): dkimpy decides


def verify(hash: _Hash, signature: bytes, public_key: dict[str, Any]) -> bool:
    """Same contract as ``dkim.crypto.RSASSA_PKCS1_v1_5_verify``."""
    modulus, exponent = public_key["modulus"], public_key["publicExponent"]
    algorithm = _HASHES.get(hash.name.lower())
    key = _public_key(modulus, exponent) if algorithm is not None else None
    if key is None or algorithm is None or modulus.bit_length() < _MIN_BITS:
        return _PURE_PYTHON(hash, signature, public_key)
    modlen = (modulus.bit_length() + 7) // 8
    if len(signature) > modlen:
        return False
    # dkimpy reads the signature as an integer, so a short one is left-padded;
    # OpenSSL insists on exactly the modulus length.
    signature = signature.rjust(modlen, b"\0")
    try:
        key.verify(signature, hash.digest(), padding.PKCS1v15(), Prehashed(algorithm()))
    except (InvalidSignature, ValueError):
        # ValueError: a signature numerically above the modulus; dkimpy's
        # arithmetic would reduce it, but no honest signer produces one.
        return False
    return True


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def evaluate_pk(name: bytes, record: bytes | str | None) -> tuple[Any, ...]:
    """dkimpy's key-record parser, remembered per (name, record text).

    The result depends on nothing else, errors are not cached, and the parsed key is
    only ever read. A changed record is a different cache entry, so DNS (and its TTL,
    in our resolver) stays the authority on which key is current.
    """
    return _EVALUATE_PK(name, record)


def compress_whitespace(content: bytes) -> bytes:
    """Same result as ``dkim.canonicalization.compress_whitespace``."""
    return _WSP_TO_COMPRESS.sub(b" ", content)


def strip_trailing_whitespace(content: bytes) -> bytes:
    """Same result as ``dkim.canonicalization.strip_trailing_whitespace``."""
    if b" \r\n" not in content and b"\t\r\n" not in content:
        return content  # its pattern needs a space or tab right before a CRLF
    return _TRAILING_WSP.sub(b"\r\n", content)


def unfold_header_value(content: bytes) -> bytes:
    """Same result as ``dkim.canonicalization.unfold_header_value``."""
    return _LINE_BREAK.sub(b"", content) if b"\n" in content else content


def install() -> None:
    """Point dkimpy at this module's functions and :data:`RE_BTAG` (idempotent)."""
    dkim.RSASSA_PKCS1_v1_5_verify = verify
    dkim.evaluate_pk = evaluate_pk
    dkim.RE_BTAG = RE_BTAG
    dkim.canonicalization.compress_whitespace = compress_whitespace
    dkim.canonicalization.strip_trailing_whitespace = strip_trailing_whitespace
    dkim.canonicalization.unfold_header_value = unfold_header_value
