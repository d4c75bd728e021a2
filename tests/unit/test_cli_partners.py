"""``inboxpay partners list|add|remove``: the [[partners]] of the config, edited in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inboxpay import cli, config
from inboxpay.config import DEFAULT_PARTNERS
from inboxpay.dev.init import init

HAND_WRITTEN = """\
# Hand-written config for mx1.
[milter]
socket = "inet:8894@127.0.0.1"  # loopback only
authserv_id = "mx1.example.com"

[signing]
key_file = "keys/card-signing.pem"
recipient_key_file = "keys/recipient.key"

# Our billing partners.
[[partners]]
id = "xero"   # keep first
name = "Xero"
sender_domains = ["post.xero.com"]
invoice_url_hosts = ["in.xero.com"]
# xero also uses in2.xero.com (ticket 42)

# Acme signs with its own domain since 2024.
[[partners]]
id = "acme"
name = "Acme"
sender_domains = ["acme.example"]
invoice_url_hosts = ["pay.acme.example"]

# Finance opted out.
[orgs."finance.example.org"]
pay_enabled = false  # until Q3
"""

ADD_BETA = [
    "partners",
    "add",
    "beta",
    "--name",
    "Beta Billing",
    "--sender-domain",
    "billing.beta.example",
    "--sender-domain",
    "beta.example",
    "--invoice-url-host",
    "pay.beta.example",
]


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "#" in line]


@pytest.fixture
def hand(tmp_path: Path) -> Path:
    path = tmp_path / "inboxpay.toml"
    path.write_text(HAND_WRITTEN)
    return path


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    return init(tmp_path / "dev")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ids(path: Path) -> list[str]:
    return [p.id for p in config.load(path).partners]


def test_list_shows_the_config_partners(dev: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "partners", "list", "--config", str(dev))
    assert code == 0
    head, *rows = out.splitlines()
    assert head == f"[[partners]] in {dev}:"
    assert rows[0] == (
        "ID          NAME                     SENDER DOMAINS        INVOICE URL HOSTS"
        "                      PROCESSOR"
    )
    assert rows[2].split() == [
        "freshbooks",
        "FreshBooks",
        "freshbooks.com",
        "my.freshbooks.com,",
        "app.freshbooks.com",
        "sandbox",
    ]
    assert [r.split()[0] for r in rows[1:]] == ["xero", "freshbooks", "sample"]


def test_list_says_when_the_defaults_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inboxpay.toml"
    path.write_text(HAND_WRITTEN[: HAND_WRITTEN.index("# Our billing")])
    code, out, _ = run(capsys, "partners", "list", "--config", str(path))
    assert code == 0 and "the built-in defaults apply" in out.splitlines()[0]
    code, out, _ = run(capsys, "partners", "list", "--config", str(path), "--json")
    listed = json.loads(out)
    assert listed["source"] == "defaults" and listed["config"] == str(path)
    assert [p["id"] for p in listed["partners"]] == [p.id for p in DEFAULT_PARTNERS]


def test_list_json(hand: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "partners", "list", "--config", str(hand), "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["source"] == "config"
    assert listed["partners"][1] == {
        "id": "acme",
        "name": "Acme",
        "sender_domains": ["acme.example"],
        "invoice_url_hosts": ["pay.acme.example"],
        "processor": "sandbox",
    }


def test_add_then_list_shows_it_and_comments_survive(
    hand: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *ADD_BETA, "--config", str(hand))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "added partner beta (Beta Billing): sender domains billing.beta.example, beta.example; "
        "invoice URL hosts pay.beta.example; processor sandbox",
        "the milter reloads it within 30 s; restart the sidecar: "
        "systemctl restart inboxpay-sidecar",
    ]
    text = hand.read_text()
    assert comments(text) == comments(HAND_WRITTEN)
    assert text.startswith(HAND_WRITTEN[: HAND_WRITTEN.index("# Finance")])  # appended in place
    assert text.endswith(
        '[[partners]]\nid = "beta"\nname = "Beta Billing"\n'
        'sender_domains = ["billing.beta.example", "beta.example"]\n'
        'invoice_url_hosts = ["pay.beta.example"]\n\n'
        "# Finance opted out.\n" + HAND_WRITTEN.split("# Finance opted out.\n")[1]
    )
    _, out, _ = run(capsys, "partners", "list", "--config", str(hand))
    assert out.splitlines()[-1].split() == [
        "beta",
        "Beta",
        "Billing",
        "billing.beta.example,",
        "beta.example",
        "pay.beta.example",
        "sandbox",
    ]


def test_add_to_an_init_config_keeps_the_next_sections_comments_below_it(
    dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dev.read_text()
    code, _, _ = run(capsys, *ADD_BETA, "--processor", "sandbox", "--config", str(dev))
    assert code == 0
    text = dev.read_text()
    assert comments(text) == comments(before)
    assert text.index('id = "beta"') < text.index("# Organizations not listed are enabled")
    assert ids(dev) == ["xero", "freshbooks", "sample", "beta"]
    assert cli.main(["config", "check", "--config", str(dev)]) == 0


def test_a_duplicate_id_is_refused(hand: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["partners", "add", "acme", "--name", "Acme 2", "--sender-domain", "a2.example"]
    code, out, err = run(capsys, *argv, "--invoice-url-host", "b.example", "--config", str(hand))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "inboxpay: config error: [[partners]] id: 'acme' is already a partner",
        f"inboxpay: {hand} not changed",
    ]
    assert hand.read_text() == HAND_WRITTEN


def test_a_bad_domain_is_refused_naming_the_key(
    hand: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["partners", "add", "beta", "--name", "Beta", "--sender-domain", "beta example"]
    code, _, err = run(capsys, *argv, "--invoice-url-host", "pay beta", "--config", str(hand))
    assert code == 2
    assert err.splitlines() == [
        "inboxpay: config error: [[partners]] #3 sender_domains: not a domain name: 'beta example'",
        "inboxpay: config error: [[partners]] #3 invoice_url_hosts: not a domain name: 'pay beta'",
        f"inboxpay: {hand} not changed",
    ]
    assert hand.read_bytes() == HAND_WRITTEN.encode()
    assert [p.name for p in hand.parent.iterdir()] == ["inboxpay.toml"]  # no temporary left


def test_add_without_partners_writes_the_defaults_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inboxpay.toml"
    path.write_text(HAND_WRITTEN[: HAND_WRITTEN.index("# Our billing")])
    code, out, _ = run(capsys, *ADD_BETA, "--config", str(path))
    assert code == 0
    assert "had no [[partners]]" in out and "wrote them out first (xero, freshbooks)" in out
    assert config.load(path).partners[:2] == DEFAULT_PARTNERS
    assert ids(path) == ["xero", "freshbooks", "beta"]


def test_remove(hand: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "partners", "remove", "xero", "--config", str(hand))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "removed partner xero (Xero)"
    assert "systemctl restart inboxpay-sidecar" in out
    assert ids(hand) == ["acme"]
    text = hand.read_text()
    assert "# xero also uses in2.xero.com (ticket 42)" not in text  # it was part of the entry
    kept = [c for c in comments(HAND_WRITTEN) if "xero" not in c]
    assert comments(text) == kept


def test_remove_an_unknown_id(hand: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "partners", "remove", "nope", "--config", str(hand))
    assert code == 2
    assert "no partner 'nope' (partners: xero, acme)" in err
    assert hand.read_text() == HAND_WRITTEN


def test_removing_the_last_partner_leaves_none_not_the_defaults(
    hand: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "partners", "remove", "acme", "--config", str(hand))[0] == 0
    code, _, err = run(capsys, "partners", "remove", "xero", "--config", str(hand))
    assert code == 0
    assert "warning: no partners left" in err and "no cards" in err
    assert config.load(hand).partners == ()
    assert "partners = []" in hand.read_text()
    _, out, _ = run(capsys, "partners", "list", "--config", str(hand))
    assert "no partners" in out
    assert run(capsys, *ADD_BETA, "--config", str(hand))[0] == 0  # no defaults come back
    assert ids(hand) == ["beta"]


def test_a_failed_edit_leaves_the_file_byte_identical(
    hand: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = HAND_WRITTEN.replace('authserv_id = "mx1.example.com"', 'authserv_id = "no way"')
    hand.write_text(broken)
    code, _, err = run(capsys, *ADD_BETA, "--config", str(hand))
    assert code == 2
    assert "[milter] authserv_id: expected a host name" in err
    assert hand.read_text() == broken
    processors = "[processors.sandbox]\nurl = 'http://127.0.0.1:1'\n"
    processors += "public_key_file = 'p.jwk'\napi_key_file = 'a.key'\n"
    hand.write_text(HAND_WRITTEN + processors)
    before = hand.read_bytes()
    code, _, err = run(capsys, *ADD_BETA, "--processor", "nope", "--config", str(hand))
    assert code == 2  # valid alone, but the config has no such processor
    assert "[[partners]] beta processor: no [processors.nope]" in err
    assert hand.read_bytes() == before


def test_an_edit_keeps_the_file_mode(hand: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hand.chmod(0o640)
    assert run(capsys, *ADD_BETA, "--config", str(hand))[0] == 0
    assert hand.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("action", ["list", "add", "remove"])
def test_help_has_an_example(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["partners", action, "--help"])
    assert done.value.code == 0
    assert f"example: inboxpay partners {action}" in capsys.readouterr().out


def test_remove_from_the_defaults_writes_the_others_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inboxpay.toml"
    path.write_text(HAND_WRITTEN[: HAND_WRITTEN.index("# Our billing")])
    code, out, _ = run(capsys, "partners", "remove", "xero", "--config", str(path))
    assert code == 0 and "wrote them out first" in out
    assert config.load(path).partners == DEFAULT_PARTNERS[1:]


def test_a_list_at_the_top_of_the_file_keeps_its_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = HAND_WRITTEN.split("# Our billing partners.\n")[1].split("# Finance")[0]
    rest = HAND_WRITTEN.replace(top, "")
    path = tmp_path / "inboxpay.toml"
    path.write_text(top + rest)  # [[partners]] before any other table
    assert run(capsys, "partners", "remove", "xero", "--config", str(path))[0] == 0
    assert run(capsys, "partners", "remove", "acme", "--config", str(path))[0] == 0
    text = path.read_text()
    assert config.load(path).partners == ()
    assert text.startswith("# Acme signs with its own domain since 2024.\npartners = []  # ")
    kept = [c for c in comments(top + rest) if "xero" not in c]
    assert comments(text) == [kept[0], comments(text)[1], *kept[1:]]


def test_a_symlinked_config_stays_a_symlink(
    hand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(hand)
    assert run(capsys, *ADD_BETA, "--config", str(link))[0] == 0
    assert link.is_symlink() and ids(hand) == ["xero", "acme", "beta"]


def test_an_edit_without_access_to_the_folder_is_a_clear_error(
    hand: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a user who forgot sudo: the lock on /etc/inboxpay cannot be taken. (We run as
    # root here, so the refusal is simulated where the folder is opened.)
    from inboxpay.config import edit

    def refuse(directory: Path) -> object:
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr(edit, "locked", refuse)
    before = hand.read_bytes()
    argv = ["partners", "remove", "acme", "--config", str(hand)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Permission denied" in err and "not changed" in err and "Traceback" not in err
    assert hand.read_bytes() == before
