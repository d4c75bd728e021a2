"""The ``InboxPay-Card`` header and its keys (the public spec is docs/card-format.md).

- :mod:`.header`: the header itself, a JWS signed with Ed25519: claims, recipient
  hashes, signing, folding, verifying;
- :mod:`.keys`: the card's key files, the Ed25519 signing key and the recipient-hash
  secret;
- :mod:`.keyring`: the signing keyring, the current key and the retired ones still in
  their grace period, and its rotation.

The user's payment card is not here: that is :mod:`inboxpay.vault`.
"""
