"""``inboxpay config check``: every problem of a config file and of the key files it names.

The key files are read the way the milter and the sidecar read them, and their problems
join the config's own in one list, so one run shows everything to fix. The signing,
recipient and vault keys are checked even when the config has other errors; the
sidecar's issuer keys and the processors' keys once the rest of the config is valid
(their entries must parse first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inboxpay.card.keyring import load_retired
from inboxpay.card.keys import load_recipient_key, load_signing_key
from inboxpay.config import Config, Examined, examine, read
from inboxpay.config.reader import Errors
from inboxpay.errors import ConfigError
from inboxpay.invoice.request_keys import load_request_keys
from inboxpay.vault.keys import load_vault_keys


@dataclass(frozen=True)
class Report:
    path: Path
    errors: tuple[str, ...]  # each "WHERE: message", in the order found
    config: Config | None  # only when there is no error


def check(path: str | Path) -> Report:
    p = Path(path).absolute()
    try:
        data = read(p)
    except ConfigError as e:
        return Report(p, e.errors, None)
    found = examine(data, p)
    _check_key_files(found, vault_in_use=_runs_sidecar(data))
    if found.config is not None:
        _check_partner_keys(found.config, found.errors)
        _check_service_keys(found.config, found.errors)
    errors = tuple(found.errors.messages)
    return Report(p, errors, None if errors else found.config)


def _runs_sidecar(data: dict[str, Any]) -> bool:
    # Only the sidecar opens the vault; a milter-only MX config need not have its key.
    return "sidecar" in data or "vault" in data


def _check_key_files(found: Examined, vault_in_use: bool) -> None:
    checks: list[tuple[str, str, Path, Callable[[Path], object]]] = []
    if found.signing is not None:
        s = found.signing
        checks += [
            ("[signing]", "key_file", s.key_file, load_signing_key),
            ("[signing]", "retired_keys_file", s.retired_keys_file, load_retired),
            ("[signing]", "recipient_key_file", s.recipient_key_file, load_recipient_key),
        ]
    if vault_in_use and found.vault_key_file is not None:
        checks.append(("[vault]", "key_file", found.vault_key_file, load_vault_keys))
    for section, key, path, load in checks:
        where = f"{section} {key}"
        if found.errors.involve(section, where):
            continue  # the path itself is wrong, already reported
        with found.errors.guard(where):
            load(path)


def _check_partner_keys(config: Config, errors: Errors) -> None:
    """The public keys partners sign their dynamic senders' requests with."""
    for partner in config.partners:
        where = f"[[partners]] {partner.id} signed_request_keys"
        for path in partner.signed_request_keys:
            with errors.guard(where):
                load_request_keys(path, where)


def _check_service_keys(config: Config, errors: Errors) -> None:
    """The keys the sidecar and the processors open at start-up."""
    from inboxpay.processor.keys import load_api_key, load_processor_key, load_public_jwk_file
    from inboxpay.sidecar.auth import load_issuer_key

    for issuer in config.sidecar.issuers:
        with errors.guard(f"[[sidecar.issuers]] {issuer.iss} key_file"):
            load_issuer_key(issuer)
    for name, pc in config.processors.items():
        where = f"[processors.{name}]"
        with errors.guard(f"{where} public_key_file"):
            load_public_jwk_file(pc.public_key_file, f"{where} public_key_file")
        with errors.guard(f"{where} api_key_file"):
            load_api_key(pc.api_key_file, f"{where} api_key_file")
    if config.sandbox is not None:
        with errors.guard("[sandbox] key_file"):
            load_processor_key(config.sandbox.key_file)
        with errors.guard("[sandbox] api_key_file"):
            load_api_key(config.sandbox.api_key_file)
