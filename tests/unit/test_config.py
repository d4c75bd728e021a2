"""Configuration: the contract's keys, defaults, and one clear error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxpay import cli, config
from inboxpay.dev.init import init
from inboxpay.errors import ConfigError

CONTRACT = """
[milter]
socket = "inet:8894@127.0.0.1"
authserv_id = "mx.example.com"
[dns]
nameservers = ["127.0.0.1"]
port = 53
timeout = 5.0
[signing]
key_file = "keys/card-signing.pem"
recipient_key_file = "keys/recipient.key"
[[partners]]
id = "xero"
name = "Xero"
sender_domains = ["post.xero.com"]
invoice_url_hosts = ["in.xero.com"]
[orgs."example.org"]
pay_enabled = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inboxpay.toml"
    path.write_text(text)
    return path


def test_the_contract_parses(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, CONTRACT))
    assert cfg.milter.socket == "inet:8894@127.0.0.1"
    assert cfg.milter.authserv_id == "mx.example.com"
    assert cfg.dns.nameservers == ("127.0.0.1",) and cfg.dns.port == 53 and cfg.dns.timeout == 5.0
    assert cfg.signing.key_file == tmp_path / "keys" / "card-signing.pem"  # relative to the file
    assert [p.id for p in cfg.partners] == ["xero"]
    assert cfg.partners[0].invoice_url_hosts == ("in.xero.com",)
    assert cfg.orgs == {"example.org": False}


def test_without_partners_the_defaults_apply(tmp_path: Path) -> None:
    text = CONTRACT.split("[[partners]]")[0]
    cfg = config.load(write(tmp_path, text))
    assert {p.id for p in cfg.partners} == {"xero", "freshbooks"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("port = 53", 'port = "53"', "[dns] port: expected int"),
        ("port = 53", "port = 70000", "[dns] port: must be 1..65535"),
        ("timeout = 5.0", "timeout = 0", "[dns] timeout: must be more than 0"),
        (
            'nameservers = ["127.0.0.1"]',
            'nameservers = ["dns.example"]',
            "[dns] nameservers: not an IP",
        ),
        ('socket = "inet:8894@127.0.0.1"', 'socket = "8894"', "[milter] socket: not a libmilter"),
        ('authserv_id = "mx.example.com"', 'authserv = "x"', "[milter] authserv: unknown key"),
        ('[orgs."example.org"]', '[orgs."example.org"]\npay = 1', "pay: unknown key"),
        ("pay_enabled = false", 'pay_enabled = "no"', "pay_enabled: expected bool"),
        ('id = "xero"', 'id = "Xero Ltd"', "[[partners]] #1 id: expected lowercase"),
        (
            'invoice_url_hosts = ["in.xero.com"]',
            "invoice_url_hosts = []",
            "invoice_url_hosts: needs at least",
        ),
        (
            'sender_domains = ["post.xero.com"]',
            'sender_domains = ["post xero"]',
            "not a domain name",
        ),
        ("[signing]", "[signing]\nkid = 5", "[signing] kid: expected str"),
        ("[dns]", '[policy]\nalignment = "loose"\n[dns]', "[policy] alignment: must be"),
        ("[dns]", "[sidecars]\n[dns]", "config sidecars: unknown key"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in CONTRACT
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, CONTRACT.replace(old, new, 1)))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)  # one line


def test_missing_signing_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[signing\]: missing section"):
        config.load(write(tmp_path, "[milter]\n"))


def test_syntax_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3"):
        config.load(write(tmp_path, "[milter]\nsocket = 'x'\nport = = 3\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "nope.toml")


def test_init_writes_a_config_that_loads_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path / "dev")
    assert cli.main(["config", "check", "--config", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    assert (tmp_path / "dev" / "keys" / "card-signing.pem").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="already exists"):
        init(tmp_path / "dev")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config error" in capsys.readouterr().err
    path = init(tmp_path)
    (tmp_path / "keys" / "recipient.key").write_text("short\n")
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    assert "[signing] recipient_key_file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["frobnicate"])
    assert usage.value.code == 2


def test_keys_public_prints_a_jwks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = init(tmp_path)
    assert cli.main(["keys", "public", "--config", str(path)]) == 0
    jwks = json.loads(capsys.readouterr().out)
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key  # never the private part


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ('{name = "a.test", type = "SRV", value = "x"}', "type: must be one of"),
        ('{name = "a.test", type = "A", value = "::1"}', "value: not a valid A value"),
        ('{name = "a.test", type = "MX", value = "mx.a.test"}', "value: not a valid MX value"),
        ('{name = "a test", type = "TXT", value = "x"}', "name: not a domain name"),
    ],
)
def test_static_dns_records_are_validated(tmp_path: Path, record: str, message: str) -> None:
    text = CONTRACT.replace("timeout = 5.0", f"timeout = 5.0\nstatic = [{record}]")
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text))


def test_keys_generate_writes_only_missing_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONTRACT)
    assert cli.main(["config", "check", "--config", str(path)]) == 2  # no keys yet
    assert cli.main(["keys", "generate", "--config", str(path)]) == 0
    signing = tmp_path / "keys" / "card-signing.pem"
    first = signing.read_bytes()
    assert signing.stat().st_mode & 0o077 == 0
    assert (tmp_path / "keys" / "vault.json").exists()
    assert cli.main(["config", "check", "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "generate", "--config", str(path)]) == 0
    assert signing.read_bytes() == first  # never overwritten
    assert f"kept {signing}" in capsys.readouterr().out


def test_every_error_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (
        CONTRACT.replace("port = 53", 'port = "53"')  # wrong type
        .replace("timeout = 5.0", "timeout = 0")  # bad value, same section
        .replace('socket = "inet:8894@127.0.0.1"', 'socket = "8894"\nsockets = 1\nspeed = 2')
        .replace('id = "xero"', 'id = "Xero Ltd"')
        .replace('invoice_url_hosts = ["in.xero.com"]', 'invoice_url_hosts = ["in xero", "a b"]')
        .replace("pay_enabled = false", 'pay_enabled = "no"')
        .replace("[dns]", '[policy]\nalignment = "loose"\nmax_amount = "lots"\n[dns]')
    )
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.errors == (
        "[milter] socket: not a libmilter socket spec: '8894'",
        "[milter] sockets: unknown key",  # every unknown key, not the first
        "[milter] speed: unknown key",
        "[dns] port: expected int, got '53'",
        "[dns] timeout: must be more than 0 and at most 60 seconds",
        "[policy] alignment: must be 'relaxed' or 'strict'",
        "[policy] max_amount: not a decimal number: 'lots'",
        "[[partners]] #1 id: expected lowercase letters, digits, - or _: 'Xero Ltd'",
        "[[partners]] #1 invoice_url_hosts: not a domain name: 'in xero'",
        "[[partners]] #1 invoice_url_hosts: not a domain name: 'a b'",
        "[orgs.'example.org'] pay_enabled: expected bool, got 'no'",
    )
    assert str(caught.value) == "\n".join(caught.value.errors)  # one per line


def test_a_broken_entry_does_not_hide_the_next_one(tmp_path: Path) -> None:
    text = CONTRACT.replace(
        "[orgs.",
        '[[partners]]\nid = "fb"\nsender_domains = ["fresh books"]\n'
        'invoice_url_hosts = ["my.freshbooks.com"]\n'
        "[[partners]]\n"
        'id = "xero"\nname = "Again"\nsender_domains = 5\ninvoice_url_hosts = ["a.example"]\n'
        "[orgs.",
    ).replace('name = "Xero"\n', "")
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.errors == (
        "[[partners]] #1 name: missing",
        "[[partners]] #2 name: missing",
        "[[partners]] #2 sender_domains: not a domain name: 'fresh books'",
        "[[partners]] #3 id: duplicate partner id 'xero'",
        "[[partners]] #3 sender_domains: expected list, got 5",
    )


def test_a_section_that_cannot_be_read_does_not_hide_the_others(tmp_path: Path) -> None:
    text = CONTRACT.replace("[signing]\n", "[signs]\n").replace("port = 53", "port = 0")
    text = text.replace('[milter]\nsocket = "inet:8894@127.0.0.1"', "milter = 5\n[x]\ny = 1")
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.errors == (
        "[milter]: expected a table",
        "[dns] port: must be 1..65535",
        "[signing]: missing section",
        "config signs: unknown key",
        "config x: unknown key",
    )


def test_a_section_read_on_its_own_stops_at_the_first_problem() -> None:
    from inboxpay.config.mail import dns
    from inboxpay.config.reader import Section

    with pytest.raises(ConfigError, match=r"^\[dns\] port: must be 1..65535$"):
        dns(Section("[dns]", {"port": 0, "timeout": 0}))
