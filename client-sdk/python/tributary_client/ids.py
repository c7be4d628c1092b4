"""The one rule for each kind of id, as ``@tributary/protocol``'s ``ids.ts`` states it:
ids become path components of the coordinator's store and (federation ids) NATS subject
tokens.

- federation id: 1-128 of ``A-Z a-z 0-9 _ -`` (no ``.``: a NATS subject token);
- client id, update id: 1-128 of ``A-Z a-z 0-9 . _ -``, not ``.`` or ``..``.
"""
from __future__ import annotations

import re
from typing import Dict, Optional

ID_PATTERNS: Dict[str, "re.Pattern[str]"] = {
    "federation_id": re.compile(r"[A-Za-z0-9_-]{1,128}"),
    "client_id": re.compile(r"[A-Za-z0-9._-]{1,128}"),
    "update_id": re.compile(r"[A-Za-z0-9._-]{1,128}"),
}

ID_RULES: Dict[str, str] = {
    "federation_id": "1 to 128 of A-Z a-z 0-9 _ - (no '.': it is a NATS subject token)",
    "client_id": "1 to 128 of A-Z a-z 0-9 . _ -, not '.' or '..'",
    "update_id": "1 to 128 of A-Z a-z 0-9 . _ -, not '.' or '..'",
}

_QUOTED = 40


def quote_value(value: object) -> str:
    """A bounded quotation of a value for messages: at most 40 characters of it."""
    if not isinstance(value, str):
        return "nothing" if value is None else type(value).__name__
    if len(value) <= _QUOTED:
        return '"' + value + '"'
    return f'"{value[:_QUOTED]}"… ({len(value)} characters)'


def is_valid_id(kind: str, value: object) -> bool:
    """Whether ``value`` is a valid id of ``kind`` (``federation_id``, ``client_id``, ``update_id``)."""
    return isinstance(value, str) and ID_PATTERNS[kind].fullmatch(value) is not None and value not in (".", "..")


def id_problem(kind: str, value: object) -> Optional[str]:
    """What is wrong with ``value`` as an id of ``kind``, naming the field and the rule; None when valid."""
    return None if is_valid_id(kind, value) else f"{kind} {quote_value(value)} must be {ID_RULES[kind]}"
