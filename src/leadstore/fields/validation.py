"""Turn a value as sent into the value stored, or say which rule it breaks (spec section 3)."""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from leadstore.fields.model import DataType, Field


@dataclass(frozen=True, slots=True)
class PhoneRules:
    country_code_mandatory: bool
    default_country_code: str


DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class InvalidValue(Exception):
    def __init__(self, message: str, code: str = "INVALID_VALUE") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class MissingCountryCode(InvalidValue):
    def __init__(self, field_: Field) -> None:
        super().__init__(
            f"{field_.schema_name} must include a country code, e.g. +91-1234554321: this account requires one",
            "INVALID_VALUE",
        )


def _shown(value: str, limit: int = 60) -> str:
    """A rejected value as an error message quotes it: cut short, so a huge value is not echoed."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_PHONE_JUNK = re.compile(r"[ \t\n\r\f\v().-]")
_PHONE_CHARACTERS = re.compile(r"[0-9+ \t\n\r\f\v().-]*", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_BOOLEANS = {"1": "1", "0": "0", "true": "1", "false": "0"}


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _fold_digits(value: str) -> str:
    """Any script's decimal digits and the full-width forms as ASCII, dashes as ``-``.

    Not NFKC: it would also read superscripts and circled digits (``²``, ``①``) as digits,
    which ``int()`` refuses and nobody writes for a phone number or a date."""
    folded = []
    for char in value:
        if char < "\x80":
            folded.append(char)
        elif (digit := unicodedata.decimal(char, None)) is not None:
            folded.append(chr(48 + digit))
        elif "\uff01" <= char <= "\uff5e" or char == "\u3000":  # full-width ASCII, ideographic space
            folded.append(_nfkc(char))
        elif char == "\u2212" or unicodedata.category(char) == "Pd":  # minus sign, dashes
            folded.append("-")
        elif char.isspace():
            folded.append(" ")
        else:
            folded.append(char)  # the type's check refuses it
    return _nfc("".join(folded))


# The one character normal form per type, applied before anything else looks at a non-ASCII
# value (ASCII is already in every normal form).
_CHARACTERS: dict[DataType, Callable[[str], str]] = {
    DataType.TEXT: _nfc,
    DataType.WEBSITE: _nfc,
    DataType.EMAIL: _nfkc,
    DataType.SELECT: _nfkc,
    DataType.BOOLEAN: _nfkc,
    DataType.NUMBER: _fold_digits,
    DataType.PHONE: _fold_digits,
    DataType.DATE: _fold_digits,
    DataType.DATETIME: _fold_digits,
    DataType.TIME: _fold_digits,
}


def _characters(field_: Field, raw: str) -> str:
    """``raw`` in ``field_``'s character normal form; refuses what no database column can hold."""
    value = raw
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue(f"{field_.schema_name} must be valid Unicode text; it has a lone surrogate") from None
        value = _CHARACTERS[field_.data_type](value)
    if "\x00" in value:
        raise InvalidValue(f"{field_.schema_name} must not contain NUL characters")
    return value


def normalize(field_: Field, raw: str | None, phone: PhoneRules) -> Any:
    """The stored form of ``raw`` for ``field_``; ``None`` means empty.

    Every write and every lookup goes through here, so any spelling of a value finds the lead
    that holds it."""
    value = "" if raw is None else _characters(field_, raw).strip()
    if field_.lower_case:
        value = value.lower()
    if value == "":
        if field_.is_mandatory:
            raise InvalidValue(f"{field_.schema_name} is mandatory and cannot be empty", "MANDATORY_MISSING")
        return None
    limit = field_.effective_max_length
    if limit is not None and len(value) > limit:
        raise InvalidValue(f"{field_.schema_name} is longer than its maximum length of {limit} characters", "TOO_LONG")
    return _BY_TYPE[field_.data_type](field_, value, phone)


def normalize_fragment(field_: Field, raw: str) -> str | None:
    """Part of a value (a LIKE pattern, a quick-search prefix) in ``field_``'s character normal
    form, so it matches stored values however it is spelt; None when no stored value holds it."""
    try:
        value = _characters(field_, raw)
    except InvalidValue:
        return None
    return value.lower() if field_.lower_case or field_.data_type == DataType.EMAIL else value


def _text(field_: Field, value: str, phone: PhoneRules) -> str:
    return value


def _number(field_: Field, value: str, phone: PhoneRules) -> float:
    if not _NUMBER.fullmatch(value):
        raise InvalidValue(f"{field_.schema_name} must be a number, e.g. 42 or 3.5; got {_shown(value)}")
    number = float(value)
    if abs(number) >= 1e15:
        raise InvalidValue(f"{field_.schema_name} must be less than 1e15 in size")
    return number


# The everyday address (ASCII, dot-atoms, a letters-only top-level domain), recognised without
# the full RFC and IDNA machinery of email_validator, which costs ~60 µs a value on the
# bulk-update hot path. Anything else still goes through email_validator.
_PLAIN_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _email(field_: Field, value: str, phone: PhoneRules) -> str:
    value = value.lower()
    local, _, _ = value.partition("@")
    if len(value) <= 254 and len(local) <= 64 and _PLAIN_EMAIL.match(value):
        return value
    try:
        address = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidValue(f"{field_.schema_name} must be a valid email address; got {_shown(value)}") from None
    if value.isascii():
        return value
    # An internationalised domain is stored as its A-label (punycode), the one spelling DNS knows.
    return _nfkc(f"{address.local_part}@{address.ascii_domain}".lower())


def normalize_phone(field_: Field, value: str, phone: PhoneRules) -> str:
    """``+<country code>-<national number>``, the form LeadSquared stores and reads: the national
    number is the one E.164 carries, without a trunk prefix (``+91-09812345671`` is ``+91-9812345671``)."""
    if not _PHONE_CHARACTERS.fullmatch(value):
        raise _bad_phone(field_, value)
    if value.startswith("+"):
        body = value[1:]
        code, _, national = body.partition("-")
        code = code.strip()
        # "+CC-number" names its country code; otherwise ("+1 (202) 555-0123") the digits tell it.
        if national and _DIGITS.fullmatch(code) and len(code) <= 3:
            national = _PHONE_JUNK.sub("", national)
        else:
            digits = _PHONE_JUNK.sub("", body)
            try:
                parsed = phonenumbers.parse("+" + digits)
            except phonenumbers.NumberParseException:
                raise _bad_phone(field_, value) from None
            code = str(parsed.country_code)
            national = digits[len(code) :]
    else:
        if phone.country_code_mandatory:
            raise MissingCountryCode(field_)
        code, national = phone.default_country_code, _PHONE_JUNK.sub("", value)
    if not (_DIGITS.fullmatch(code) and _DIGITS.fullmatch(national)):
        raise _bad_phone(field_, value)
    significant = _significant(code, national)
    if significant is None:
        raise _bad_phone(field_, value)
    return f"+{code}-{significant}"


def _significant(code: str, national: str) -> str | None:
    """The national significant number of a possible number, or None."""
    if int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    while True:  # phonenumbers drops one trunk prefix a parse: "+91-009..." takes two
        try:
            number = phonenumbers.parse(f"+{code}{national}")
        except phonenumbers.NumberParseException:
            return None
        significant = phonenumbers.national_significant_number(number)
        if significant == national or not significant:
            break
        national = significant
    return national if phonenumbers.is_possible_number(number) else None


def _bad_phone(field_: Field, value: str) -> InvalidValue:
    return InvalidValue(
        f"{field_.schema_name} must be a possible phone number such as +91-1234554321; got {_shown(value)}"
    )


def _website(field_: Field, value: str, phone: PhoneRules) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise InvalidValue(f"{field_.schema_name} must be an http(s) URL, e.g. https://example.com")
    return value


def _parsed(kind: str, pattern: str, example: str) -> Any:
    """A check for a date or time written exactly as ``pattern``; stored in that canonical form."""

    def check(field_: Field, value: str, phone: PhoneRules) -> str:
        try:
            moment = datetime.strptime(value, pattern)
        except ValueError:
            raise InvalidValue(f"{field_.schema_name} must be a {kind} like {example}; got {_shown(value)}") from None
        # %Y writes the year 1 as "1", which %Y does not read back.
        return moment.strftime(pattern.replace("%Y", f"{moment.year:04d}"))

    return check


def _select(field_: Field, value: str, phone: PhoneRules) -> str:
    wanted = value.lower()
    for option in field_.options:
        if option.lower() == wanted or (not option.isascii() and _nfkc(option).lower() == wanted):
            return option
    choices = ", ".join(field_.options)
    raise InvalidValue(f"{field_.schema_name} must be one of: {choices}; got {_shown(value)}")


def _boolean(field_: Field, value: str, phone: PhoneRules) -> str:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise InvalidValue(f"{field_.schema_name} must be 1, 0, true or false; got {_shown(value)}") from None


_BY_TYPE = {
    DataType.TEXT: _text,
    DataType.NUMBER: _number,
    DataType.EMAIL: _email,
    DataType.PHONE: normalize_phone,
    DataType.WEBSITE: _website,
    DataType.DATE: _parsed("date", "%Y-%m-%d", "2026-01-31"),
    DataType.DATETIME: _parsed("date and time", DATETIME_FORMAT, "2026-01-31 14:05:09"),
    DataType.TIME: _parsed("time", "%H:%M", "14:05"),
    DataType.SELECT: _select,
    DataType.BOOLEAN: _boolean,
}


def to_wire(field_: Field, stored: Any) -> str | None:
    """A stored value as LeadSquared reads it: a string, or null."""
    if type(stored) is str:  # the common case first: the bulk update's history converts hundreds
        return stored
    if stored is None:
        return None
    if isinstance(stored, float):
        if stored.is_integer():
            return str(int(stored))
        text = repr(stored)  # shortest round trip; positional, as a Number is written ("1e-05" is not one)
        return text if "e" not in text else format(Decimal(text), "f")
    if isinstance(stored, datetime):
        return format_datetime(stored)
    return str(stored)


def format_datetime(moment: datetime) -> str:
    return moment.strftime(DATETIME_FORMAT)
