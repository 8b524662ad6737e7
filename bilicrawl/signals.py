"""bilicrawl's own crawler signals, sent by the API middleware and the closing path.

They let throttling, the circuit breakers, the storage pipeline and the
end-of-crawl summary react to how Bilibili answers and to the crawl closing,
without parsing responses a second time. Handlers receive ``request`` and, for
the failure signals, ``reason`` (e.g. ``api_code_-412``).
"""

risk_control = object()
"""An answer was a risk-control block (-412, -352, -799, -509, HTTP 412/429)."""

transient_failure = object()
"""A request failed in a way worth retrying (5xx, timeout, truncated body)."""

network_failure = object()
"""A download got no response at all (refused, DNS, timeout, dropped connection).

Also sent as ``transient_failure``; with ``exception`` as well. Unlike a 5xx or a
broken body, it does not prove the host is alive: the dead-host breaker counts it.
"""

clean_answer = object()
"""An answer was not a block: success, or a permanent error about the id itself."""

crawl_closing = object()
"""The crawl is closing early (a circuit breaker, Ctrl-C): retries stop, buffers are written.

Sent once, with ``reason`` (the finish reason, or ``shutdown``).
"""

store_committed = object()
"""A batch is committed to the store: sent with ``collection`` and ``keys``, the natural
key tuples of its documents (of a batch item, of its rows)."""

store_stalled = object()
"""A batch failed and is about to be retried: sent with ``collection`` and ``error``."""

store_resumed = object()
"""The batch of a ``store_stalled`` was written, or given up on: sent with nothing."""

store_failed = object()
"""A batch could not be written after its retries (dead-lettered or lost): sent with
``collection``, ``keys`` and ``error``. The crawl then closes (``bilicrawl_store_failed``)."""
