"""The card vault: envelope encryption of saved payment methods (PCI DSS v4 requirement 3).

Each record's secret (card number, holder name) is sealed with AES-256-GCM under its own
random 256-bit data key. The data key is wrapped, also with AES-256-GCM, by a versioned
key-encryption key (KEK) that lives only in the key file, never in the database: a
database dump alone decrypts nothing. Both layers authenticate associated data naming
the format, the purpose, the record id and the owner, so a ciphertext moved to another
row, another user, or from one layer to the other fails to open.

Rotation (3.6.1, 3.7.4): ``keys.add_kek_version`` makes a new active version;
``envelope.Vault.rewrap`` then re-wraps every data key under it without decrypting card
data. Old versions keep opening records until ``keys.retire_kek_version``. The order that
loses nothing:

1. ``add_kek_version``; restart or reload every process that seals, so new records use
   the new version (records sealed meanwhile under the old one stay readable);
2. rewrap every record whose ``kek_version`` is not active;
3. once a pass finds none left, ``retire_kek_version`` the old one. Retiring keeps the
   key in the file (only flagged), so a record missed by mistake can still be recovered
   by an operator.

The fingerprint key does not rotate: changing it would make every stored fingerprint
miss, and duplicate detection with it.

Python cannot guarantee that key or plaintext bytes are wiped from memory: ``bytes`` are
immutable and json and cryptography make copies. So plaintext and data keys live only in
locals for the length of one call and are never kept on an object; the remaining
protection is the process boundary (no core dumps, no swap of the sidecar).

- :mod:`.envelope`: sealing, opening and rewrapping records, and card fingerprints;
- :mod:`.keys`: the key file (``[vault] key_file``): the versioned KEKs and the
  fingerprint key, as :class:`.keys.VaultKeys`, and their rotation;
- :mod:`.paymentcard`: validating the card number, expiry and security code a user types
  (the security code is checked, never stored).
"""

from __future__ import annotations

from inboxpay.errors import InboxPayError


class VaultError(InboxPayError):
    """A record cannot be sealed, opened or rewrapped. Messages never carry key or
    plaintext material, so they are safe to log."""
