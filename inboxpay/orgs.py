"""The tenant switch: is paying enabled for an organization (a recipient's domain)?

Settings come from ``[orgs]`` in the config (defaults) and from the store (made
through the API or ``inboxpay org set``), which override them. The most specific
domain wins; organizations not listed are enabled.

This is the pure switch, on a mapping of settings: the milter's decision uses it as is.
The sidecar's view of the store's settings is ``inboxpay.sidecar.orgs.OrgDirectory``.
"""

from __future__ import annotations

from collections.abc import Mapping

from inboxpay.addresses import normalize_domain


def pay_enabled(settings: Mapping[str, bool], address_or_domain: str) -> bool:
    # Both sides as addresses.normalize writes domains (IDNA A-labels): a user's token and
    # a recipient hash say "xn--bcher-kva.example" where a config may say "bücher.example".
    domain = normalize_domain(address_or_domain.rpartition("@")[2])
    known = {normalize_domain(name): value for name, value in settings.items()}
    labels = domain.split(".")
    for i in range(len(labels)):
        setting = known.get(".".join(labels[i:]))
        if setting is not None:
            return setting
    return True
