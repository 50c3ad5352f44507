# -*- test-case-name: tests.test_errors, tests.test_api22 -*-
"""Accept-header version negotiation: which API version a request's Accept header asks for."""

from __future__ import annotations

import re

_MEDIA_TYPE = re.compile(r"^application/vnd\.appgate\.peer-v(\d{1,4})\+json$", re.IGNORECASE)


def accepted_version(header: str | None, min_version: int, max_version: int) -> int | None:
    """The version of the first acceptable media range in ``header``, else None. A range with
    ``q=0`` is one the client refuses (RFC 9110, 12.4.2), so it never counts."""
    if header is None:
        return None
    for media_range in header.split(","):
        media_type, *parameters = media_range.split(";")
        match = _MEDIA_TYPE.match(media_type.strip())
        if match is None or _refused(parameters):
            continue
        if min_version <= int(match.group(1)) <= max_version:
            return int(match.group(1))
    return None


def _refused(parameters: list[str]) -> bool:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip()) <= 0
            except ValueError:
                return True  # a weight that is not a number: not an acceptable range
    return False
