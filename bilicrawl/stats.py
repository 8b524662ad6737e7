"""Stats key names: every counter bilicrawl writes is built here.

Keys are slash-separated under one ``bilicrawl/`` prefix, with the variable part
last (``bilicrawl/api_code/-404``). A missing key means 0, so nothing is
initialised.
"""

from __future__ import annotations

PREFIX = "bilicrawl"


def stat_key(*parts: object) -> str:
    """Return ``bilicrawl/<part>/<part>...`` for the given parts."""
    return "/".join((PREFIX, *(str(part) for part in parts)))


RETRY_BASE = stat_key("retry")
"""Base key handed to ``get_retry_request``: ``bilicrawl/retry/count`` etc."""
