"""bilicrawl's own crawler signals, sent by the API middleware.

They let throttling and the risk-control circuit breaker react to how Bilibili
answers without parsing responses a second time. Handlers receive ``request``
and, for the failure signals, ``reason`` (e.g. ``api_code_-412``).
"""

risk_control = object()
"""An answer was a risk-control block (-412, -352, -799, -509, HTTP 412/429)."""

transient_failure = object()
"""A request failed in a way worth retrying (5xx, timeout, truncated body)."""

clean_answer = object()
"""An answer was not a block: success, or a permanent error about the id itself."""

circuit_open = object()
"""The circuit breaker tripped: the crawl is closing, risk answers are no longer retried."""
