"""The currencies a deal can be in (ISO 4217 codes), as a form offers them."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CURRENCIES = {
    "USD": _("US dollar"),
    "EUR": _("Euro"),
    "GBP": _("Pound sterling"),
    "CAD": _("Canadian dollar"),
    "AUD": _("Australian dollar"),
    "NZD": _("New Zealand dollar"),
    "CHF": _("Swiss franc"),
    "SEK": _("Swedish krona"),
    "NOK": _("Norwegian krone"),
    "DKK": _("Danish krone"),
    "PLN": _("Polish złoty"),
    "CZK": _("Czech koruna"),
    "HUF": _("Hungarian forint"),
    "RON": _("Romanian leu"),
    "TRY": _("Turkish lira"),
    "RUB": _("Russian rouble"),
    "UAH": _("Ukrainian hryvnia"),
    "KZT": _("Kazakhstani tenge"),
    "ILS": _("Israeli new shekel"),
    "AED": _("UAE dirham"),
    "SAR": _("Saudi riyal"),
    "INR": _("Indian rupee"),
    "CNY": _("Chinese yuan"),
    "JPY": _("Japanese yen"),
    "KRW": _("South Korean won"),
    "SGD": _("Singapore dollar"),
    "HKD": _("Hong Kong dollar"),
    "IDR": _("Indonesian rupiah"),
    "THB": _("Thai baht"),
    "PHP": _("Philippine peso"),
    "MXN": _("Mexican peso"),
    "BRL": _("Brazilian real"),
    "ARS": _("Argentine peso"),
    "CLP": _("Chilean peso"),
    "COP": _("Colombian peso"),
    "PEN": _("Peruvian sol"),
    "ZAR": _("South African rand"),
    "NGN": _("Nigerian naira"),
    "KES": _("Kenyan shilling"),
    "EGP": _("Egyptian pound"),
}


def currency_choices() -> list[tuple[str, str]]:
    return [(code, f"{code} · {name}") for code, name in CURRENCIES.items()]


def is_currency(code: str) -> bool:
    return code in CURRENCIES
