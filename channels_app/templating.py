"""Filling a WhatsApp template's variables, for display and before it is sent.

Templates name their variables by position (`{{1}}`, `{{2}}`, Meta's and Twilio's usual form)
or by name (`{{first_name}}`, Meta's named parameters). The provider fills them itself from the
values we send (Twilio ContentVariables, Meta template components); we fill them too, so the
thread shows what the customer reads and the values are checked before anything is queued.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")

# WhatsApp refuses parameters with new lines, tabs or more than four spaces in a row (Meta
# error 132018); Twilio passes them on to WhatsApp unchanged, so the rule holds for both.
WHATSAPP_BAD_PARAMETER = re.compile(r"[\n\r\t]| {5,}")
MAX_VARIABLE_LENGTH = 1024


class TemplateVariablesError(ValueError):
    """The values do not fit the template: which are missing, unknown or unusable, in words."""

    def __init__(self, message: str, *, missing=(), unknown=(), invalid=()):
        super().__init__(message)
        self.message = message
        self.missing = tuple(missing)
        self.unknown = tuple(unknown)
        self.invalid = tuple(invalid)


def placeholders(text: str) -> list[str]:
    """The variables a text uses, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


def variable_names(template) -> list[str]:
    """The template's variables: as synced from the provider, else as its body uses them."""
    names = [str(name) for name in (template.variables or []) if str(name).strip()]
    return names or placeholders(template.body)


def _braced(names) -> str:
    return ", ".join("{{" + name + "}}" for name in names)


def normalise_variables(template, values, *, whatsapp: bool = True) -> dict[str, str]:
    """The values as {name: text}, checked against the template; raises TemplateVariablesError.

    `values` is a mapping ({"1": "Ana"} or {"first_name": "Ana"}) or, for positional
    templates, a list (["Ana", "42"] fills {{1}} and {{2}}).
    """
    names = variable_names(template)
    if values is None:
        values = {}
    if isinstance(values, Sequence) and not isinstance(values, str | bytes):
        values = {str(index): value for index, value in enumerate(values, start=1)}
    if not isinstance(values, Mapping):
        raise TemplateVariablesError(
            _("Template variables must be given as names and values, or as a list.")
        )
    given: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TemplateVariablesError(
                _("The value of {{%(name)s}} must be text.") % {"name": key},
                invalid=[str(key)],
            )
        given[str(key).strip()] = str(value).strip()

    unknown = [key for key in given if key not in names]
    missing = [name for name in names if not given.get(name)]
    problems = []
    if missing:
        problems.append(
            ngettext(
                "The template “%(template)s” needs a value for %(names)s.",
                "The template “%(template)s” needs values for %(names)s.",
                len(missing),
            )
            % {"template": template.name, "names": _braced(missing)}
        )
    if unknown:
        expected = _braced(names) if names else _("no variables")
        problems.append(
            ngettext(
                "%(names)s is not a variable of this template (it has %(expected)s).",
                "%(names)s are not variables of this template (it has %(expected)s).",
                len(unknown),
            )
            % {"names": _braced(unknown), "expected": expected}
        )
    invalid = []
    for name in names:
        value = given.get(name, "")
        if len(value) > MAX_VARIABLE_LENGTH:
            invalid.append(name)
            problems.append(
                _("The value of {{%(name)s}} is longer than %(limit)d characters.")
                % {"name": name, "limit": MAX_VARIABLE_LENGTH}
            )
        elif whatsapp and WHATSAPP_BAD_PARAMETER.search(value):
            invalid.append(name)
            problems.append(
                _(
                    "The value of {{%(name)s}} contains a line break, a tab or more than four "
                    "spaces in a row, which WhatsApp does not accept in template variables."
                )
                % {"name": name}
            )
    if problems:
        raise TemplateVariablesError(
            " ".join(problems), missing=missing, unknown=unknown, invalid=invalid
        )
    return {name: given[name] for name in names}


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with each {{variable}} replaced by its value (unknown ones are left as they are)."""

    def replace(match: re.Match) -> str:
        return str(values.get(match.group(1), match.group(0)))

    return PLACEHOLDER.sub(replace, text or "")


def render(template, values: Mapping[str, str]) -> str:
    """What the customer reads: the template's header (when it is text) and body, filled."""
    parts = []
    for component in template.components or []:
        if (
            isinstance(component, dict)
            and str(component.get("type", "")).upper() == "HEADER"
            and str(component.get("format", "TEXT")).upper() == "TEXT"
            and component.get("text")
        ):
            parts.append(fill(component["text"], values))
    parts.append(fill(template.body, values))
    return "\n".join(part for part in parts if part)
