"""Card data validation: brands, Luhn, lengths, expiry, security codes, and silent errors."""

from __future__ import annotations

import datetime

import pytest

from inboxpay.vault.paymentcard import (
    BRAND_LENGTHS,
    CardDataError,
    brand,
    last4,
    luhn_ok,
    normalize_number,
    validate_expiry,
    validate_number,
    validate_security_code,
)

SANDBOX_CARDS = [
    ("4242424242424242", "visa"),
    ("4000000000000002", "visa"),
    ("4000000000009995", "visa"),
    ("4000002500003155", "visa"),
    ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"),
    ("6011111111111117", "discover"),
    ("3566002020360505", "jcb"),
    ("6200000000000005", "unionpay"),
    ("36227206271667", "diners"),
]

TODAY = datetime.date(2025, 6, 15)


def assert_silent(err: CardDataError, *secrets: str) -> None:
    """Neither the message, the args, nor any chained exception repeats the input."""
    texts = [str(err), repr(err), repr(err.args), err.message]
    cause = err.__cause__ or err.__context__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    for secret in secrets:
        for text in texts:
            assert secret not in text


@pytest.mark.parametrize(("number", "kind"), SANDBOX_CARDS)
def test_sandbox_cards_validate_with_their_brand(number: str, kind: str) -> None:
    assert luhn_ok(number)
    assert brand(number) == kind
    assert validate_number(number) == number
    assert len(number) in BRAND_LENGTHS[kind]


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("4", "visa"),
        ("51", "mastercard"),
        ("55", "mastercard"),
        ("2221", "mastercard"),
        ("2720", "mastercard"),
        ("34", "amex"),
        ("37", "amex"),
        ("6011", "discover"),
        ("644", "discover"),
        ("649", "discover"),
        ("65", "discover"),
        ("3528", "jcb"),
        ("3589", "jcb"),
        ("300", "diners"),
        ("305", "diners"),
        ("3095", "diners"),
        ("36", "diners"),
        ("38", "diners"),
        ("62", "unionpay"),
        ("622126", "unionpay"),
        ("81", "unionpay"),
        ("2220", "unknown"),
        ("2721", "unknown"),
        ("50", "unknown"),
        ("56", "unknown"),
        ("35", "unknown"),
        ("1", "unknown"),
        ("9", "unknown"),
    ],
)
def test_brand_prefix_ranges(prefix: str, kind: str) -> None:
    assert brand(prefix.ljust(16, "0")) == kind


def test_brand_of_non_digits_is_unknown() -> None:
    assert brand("") == "unknown"
    assert brand("4242-4242") == "unknown"


def test_normalize_strips_spaces_and_dashes_only() -> None:
    assert normalize_number(" 4242 4242-4242 4242 ") == "4242424242424242"
    for bad in ["4242.4242", "4242/4242", "4242a4242", "", "  -  ", "4242\u00a04242"]:
        with pytest.raises(CardDataError) as e:
            normalize_number(bad)
        assert e.value.code == "invalid_number"


def test_normalize_refuses_non_ascii_digits() -> None:
    # Fullwidth, superscript, Arabic-Indic: str.isdigit() accepts them, a card number must not.
    for bad in ["\uff14\uff12" * 8, "424242424242424²", "\u0664\u0662" * 8]:
        with pytest.raises(CardDataError) as e:
            normalize_number(bad)
        assert e.value.code == "invalid_number"


def test_luhn() -> None:
    assert luhn_ok("4242424242424242")
    assert luhn_ok("79927398713")  # the textbook example
    assert not luhn_ok("4242424242424241")
    assert not luhn_ok("79927398710")
    assert not luhn_ok("4242 4242")
    assert not luhn_ok("")


def test_validate_number_accepts_formatted_input() -> None:
    assert validate_number("4242 4242 4242 4242") == "4242424242424242"
    assert validate_number("3782-822463-10005") == "378282246310005"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("4242x424242424242", "invalid_number"),
        ("", "invalid_number"),
        ("42424242424", "invalid_number"),  # 11 digits
        ("42424242424242424242", "invalid_number"),  # 20 digits
        ("4242424242424241", "luhn_failed"),
        ("5555555555554445", "luhn_failed"),
        ("378282246310006", "luhn_failed"),
        ("9999999999999995", "unsupported_brand"),
        ("1234567812345670", "unsupported_brand"),
        ("37828224631003", "invalid_number"),  # amex with 14 digits (Luhn-valid)
        ("55555555555546", "invalid_number"),  # mastercard with 14 digits (Luhn-valid)
    ],
)
def test_validate_number_codes(text: str, code: str) -> None:
    with pytest.raises(CardDataError) as e:
        validate_number(text)
    assert e.value.code == code
    digits = text.replace(" ", "").replace("-", "")
    if digits:
        assert_silent(e.value, text, digits, digits[-8:])


def test_luhn_valid_wrong_length_numbers_exist_for_the_table() -> None:
    # The two wrong-length cases above must really pass Luhn, or they test the wrong code.
    assert luhn_ok("37828224631003") and brand("37828224631003") == "amex"
    assert luhn_ok("55555555555546") and brand("55555555555546") == "mastercard"


def test_last4() -> None:
    assert last4("4242 4242 4242 4242") == "4242"
    assert last4("378282246310005") == "0005"
    with pytest.raises(CardDataError) as e:
        last4("123")
    assert e.value.code == "invalid_number"


# --- expiry ---


@pytest.mark.parametrize(
    ("month", "year"),
    [(6, 2025), ("06", "2025"), ("6", "2025"), (12, 2025), (1, 2026), (12, 2075)],
)
def test_expiry_valid(month: int | str, year: int | str) -> None:
    assert validate_expiry(month, year, today=TODAY) == (int(month), int(year))


def test_card_is_valid_through_the_last_day_of_its_month() -> None:
    assert validate_expiry(6, 2025, today=datetime.date(2025, 6, 30)) == (6, 2025)
    with pytest.raises(CardDataError) as e:
        validate_expiry(6, 2025, today=datetime.date(2025, 7, 1))
    assert e.value.code == "expired_card"


@pytest.mark.parametrize(("month", "year"), [(5, 2025), (12, 2024), (6, 2024), ("05", "2025")])
def test_expired(month: int | str, year: int | str) -> None:
    with pytest.raises(CardDataError) as e:
        validate_expiry(month, year, today=TODAY)
    assert e.value.code == "expired_card"


@pytest.mark.parametrize(
    ("month", "year"),
    [
        (13, 2025),
        (0, 2025),
        (-1, 2025),
        ("13", "2025"),
        ("1a", "2025"),
        ("", "2025"),
        (True, 2025),
        (6, 25),  # two-digit years are refused, not guessed
        ("06", "25"),
        ("06", "02025"),
        (6, 12025),
        (6, 2076),  # more than 50 years ahead: a typo
        ("6", "20x5"),
    ],
)
def test_invalid_expiry(month: int | str, year: int | str) -> None:
    with pytest.raises(CardDataError) as e:
        validate_expiry(month, year, today=TODAY)
    assert e.value.code == "invalid_expiry"
    assert e.value.__cause__ is None and e.value.__context__ is None


def test_expiry_defaults_to_now() -> None:
    this_year = datetime.date.today().year
    assert validate_expiry(12, this_year + 1) == (12, this_year + 1)
    with pytest.raises(CardDataError) as e:
        validate_expiry(1, this_year - 1)
    assert e.value.code == "expired_card"


# --- security code ---


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("123", "visa"),
        ("000", "mastercard"),
        ("1234", "amex"),
        ("999", "unknown"),
        (" 123 ", "jcb"),
    ],
)
def test_security_code_valid(code: str, kind: str) -> None:
    assert validate_security_code(code, kind) == code.strip()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("1234", "visa"),
        ("12", "visa"),
        ("123", "amex"),
        ("12345", "amex"),
        ("12a", "visa"),
        ("\uff11\uff12\uff13", "visa"),
        ("", "visa"),
        ("1 23", "discover"),
    ],
)
def test_security_code_invalid(code: str, kind: str) -> None:
    with pytest.raises(CardDataError) as e:
        validate_security_code(code, kind)
    assert e.value.code == "invalid_security_code"
    if code.strip():
        assert_silent(e.value, code.strip())


def test_no_message_repeats_a_number_or_code() -> None:
    """Every error path, fed every sandbox number (altered to fail) and real-looking codes."""
    errors: list[tuple[CardDataError, str]] = []
    for number, kind in SANDBOX_CARDS:
        bad_luhn = number[:-1] + str((int(number[-1]) + 1) % 10)
        for text in [bad_luhn, number + "x", number + "0000", number[:10], "9" + number[1:]]:
            try:
                validate_number(text)
            except CardDataError as e:
                errors.append((e, text))
        code = "7531" if kind != "amex" else "753"
        try:
            validate_security_code(code, kind)
        except CardDataError as e:
            errors.append((e, code))
    assert len(errors) >= 4 * len(SANDBOX_CARDS)
    for err, text in errors:
        digits = "".join(c for c in text if c.isdigit())
        assert_silent(err, text, digits)
