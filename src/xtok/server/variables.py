"""Policy variables: `${key}` in the Resource and Condition values of a `2012-10-17` policy,
replaced by the request's value of a single-valued condition key when the policy is evaluated.

`${key, 'default'}` gives a value for a key the request lacks; `${*}`, `${?}` and `${$}` stand for
those characters, literally. A substituted value is literal too: a `*` in a user's tag is not a
wildcard. An expanded pattern carries such literal characters as STAR and QUESTION, which the
matchers in `conditions` treat as the plain characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

STAR, QUESTION = "\ue000", "\ue001"  # a literal * or ? in an expanded pattern
_LITERAL = str.maketrans({"*": STAR, "?": QUESTION})
_PLAIN = str.maketrans({STAR: "*", QUESTION: "?"})
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_BODY = re.compile(r"^\s*([^\s,']+)\s*(?:,\s*'([^']*)'\s*)?$")
_SPECIAL = {"*": STAR, "?": QUESTION, "$": "$"}
MULTIVALUED = frozenset({"aws:tagkeys"})  # AWS: a multivalued key cannot be a variable


def problem(text: str, known: Callable[[str], bool]) -> str | None:
    """Why the variables in `text` are unusable (checked when the policy is written), or None."""
    if "${" in _VARIABLE.sub("", text):
        return "an unterminated policy variable"
    for body in _VARIABLE.findall(text):
        if body.strip() in _SPECIAL:
            continue
        match = _BODY.match(body)
        if match is None:
            return f"a malformed policy variable ${{{body}}}"
        key = match[1].lower()
        if not known(key) or key in MULTIVALUED:
            return f"a policy variable for key {match[1]}, which this endpoint does not set"
    return None


def expand(text: str, context: Mapping[str, str | list[str]]) -> str | None:
    """`text` with its variables replaced; None when one names a key the request lacks and has
    no default (AWS then treats the statement as not applying)."""
    if "${" not in text:
        return text
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        body = match[1].strip()
        if body in _SPECIAL:
            return _SPECIAL[body]
        parts = _BODY.match(match[1])
        found = context.get(parts[1].lower()) if parts else None
        if isinstance(found, str):
            return found.translate(_LITERAL)
        if parts and parts[2] is not None:
            return parts[2].translate(_LITERAL)
        missing = True
        return ""

    expanded = _VARIABLE.sub(value, text)
    return None if missing else expanded


def plain(pattern: str) -> str:
    """An expanded value compared as a whole string (no wildcards): its literal characters."""
    return pattern.translate(_PLAIN)
