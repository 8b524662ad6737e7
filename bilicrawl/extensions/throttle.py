"""Per-host and per-endpoint-family rate caps and risk-control back-off, on download slots.

Requests to a host share one download slot, except endpoint families listed in
``BILI_THROTTLE_FAMILIES`` (path prefix -> requests per second), which get a
slot of their own (``api.bilibili.com/x/space/``) with their own, stricter cap.
Each slot's delay never falls under ``1 / cap`` seconds, whatever AutoThrottle,
which keeps adjusting the delay to latency, decides. Waits are slot delays:
nothing sleeps.

When Bilibili answers with risk control (``bilicrawl.signals.risk_control``)
the whole host slows down, all its slots: the host's back-off delay jumps to at
least ``BILI_THROTTLE_BACKOFF_START`` plus up to 25 % random jitter, and grows
by ``BILI_THROTTLE_BACKOFF_FACTOR`` for every further block up to
``BILI_THROTTLE_BACKOFF_MAX`` (at most one step per back-off period, so the
answers to requests already in flight count once). Each clean answer then
shrinks it by ``BILI_THROTTLE_RECOVERY`` until it falls under the floor. The
first block after a calm period also raises the blocked slot's floor by
``BILI_THROTTLE_RATCHET``: the rate that got the crawl blocked is not tried
again, so the crawl settles under the site's limit instead of bouncing off it.
Transient failures (5xx, timeouts, broken bodies) set a back-off of
``BILI_THROTTLE_TRANSIENT_START`` that does not grow and leaves the floors
alone: they say the server had a hiccup, not that the crawl is too fast.

Settings: ``BILI_THROTTLE_ENABLED`` (True), ``BILI_THROTTLE_MAX_RPS`` (1.0),
``BILI_THROTTLE_FAMILIES`` (space and relation endpoints at 0.5),
``BILI_THROTTLE_BACKOFF_START`` (10.0 s), ``BILI_THROTTLE_BACKOFF_FACTOR`` (2.0),
``BILI_THROTTLE_BACKOFF_MAX`` (600.0 s), ``BILI_THROTTLE_RECOVERY`` (0.7),
``BILI_THROTTLE_RATCHET`` (1.25), ``BILI_THROTTLE_TRANSIENT_START`` (1.0 s).
Slot jitter (``DOWNLOAD_DELAY_JITTER``) is accounted for: floors are widened so
that even the shortest jittered delay respects the cap.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy import signals as scrapy_signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from bilicrawl import signals
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SLOT_META = "download_slot"


@dataclass
class Backoff:
    """The back-off of one host; it outlives Scrapy's idle-slot cleanup."""

    delay: float = 0.0
    """Extra delay imposed by recent failures; 0 when the host is healthy."""
    escalated_at: float = float("-inf")
    """Monotonic time of the last step."""


def _positive(name: str, value: float) -> float:
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


class BiliThrottle:
    """Enforces the rate caps and backs off on risk control."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("BILI_THROTTLE_ENABLED"):
            raise NotConfigured("BILI_THROTTLE_ENABLED is off")
        jitter = settings.getfloat("DOWNLOAD_DELAY_JITTER")
        if not 0 <= jitter < 1:
            raise ValueError(f"DOWNLOAD_DELAY_JITTER must be in [0, 1), not {jitter}")
        spacing = 1 / (1 - jitter)
        self.crawler = crawler
        self.host_floor = spacing / _positive(
            "BILI_THROTTLE_MAX_RPS", settings.getfloat("BILI_THROTTLE_MAX_RPS")
        )
        families = settings.getdict("BILI_THROTTLE_FAMILIES")
        # Longest prefix first, so a specific family wins over a general one.
        self.families = sorted(
            (
                (prefix, spacing / _positive(f"BILI_THROTTLE_FAMILIES[{prefix!r}]", float(rps)))
                for prefix, rps in families.items()
            ),
            key=lambda family: -len(family[0]),
        )
        self.backoff_start = settings.getfloat("BILI_THROTTLE_BACKOFF_START")
        self.backoff_factor = settings.getfloat("BILI_THROTTLE_BACKOFF_FACTOR")
        self.backoff_max = settings.getfloat("BILI_THROTTLE_BACKOFF_MAX")
        self.recovery = settings.getfloat("BILI_THROTTLE_RECOVERY")
        self.ratchet = settings.getfloat("BILI_THROTTLE_RATCHET")
        self.transient_start = settings.getfloat("BILI_THROTTLE_TRANSIENT_START")
        self.floors: dict[str, float] = {}
        """Smallest delay between two requests of each slot, in seconds."""
        self.slot_hosts: dict[str, str] = {}
        self.backoffs: dict[str, Backoff] = {}
        """Back-off of each host."""
        connect = crawler.signals.connect
        connect(self._assign_slot, signal=scrapy_signals.request_scheduled)
        # Connected after AutoThrottle (a lower EXTENSIONS order), so the floors
        # are reapplied after each of its adjustments.
        connect(self._apply, signal=scrapy_signals.request_reached_downloader)
        connect(self._apply, signal=scrapy_signals.response_downloaded)
        connect(self._on_risk, signal=signals.risk_control)
        connect(self._on_transient, signal=signals.transient_failure)
        connect(self._on_clean, signal=signals.clean_answer)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _assign_slot(self, request: Request) -> None:
        """Put requests of an endpoint family in the family's own slot."""
        if SLOT_META in request.meta:
            return
        url = urlparse_cached(request)
        for prefix, _ in self.families:
            if url.path.startswith(prefix):
                request.meta[SLOT_META] = f"{url.hostname}{prefix}"
                return

    def _register(self, request: Request) -> tuple[str, str]:
        """Return the slot and host of *request*, learning the slot's floor on first sight."""
        url = urlparse_cached(request)
        key: str = request.meta.get(SLOT_META) or url.hostname or ""
        if key not in self.floors:
            family = next((f for f in self.families if url.path.startswith(f[0])), None)
            self.floors[key] = family[1] if family else self.host_floor
            self.slot_hosts[key] = url.hostname or ""
        return key, self.slot_hosts[key]

    def _apply(self, request: Request) -> None:
        key, host = self._register(request)
        self._set_delays(host, only=key)

    def _set_delays(self, host: str, only: str | None = None, lower: bool = False) -> None:
        """Apply the floors and the host's back-off to the host's slots.

        Delays are only raised unless *lower*: AutoThrottle may want more.
        """
        backoff = self.backoffs.get(host, Backoff()).delay
        slots = self.crawler.engine.downloader.slots
        for key, slot_host in self.slot_hosts.items():
            slot = slots.get(key)
            if slot_host != host or slot is None or (only and key != only):
                continue
            delay = max(self.floors[key], backoff)
            slot.delay = delay if lower else max(slot.delay, delay)

    def _on_risk(self, request: Request, reason: str) -> None:
        key, host = self._register(request)
        backoff = self.backoffs.setdefault(host, Backoff())
        if backoff.delay == 0:
            self.floors[key] = min(self.floors[key] * self.ratchet, self.backoff_max)
        self._escalate(host, backoff, self.backoff_start, self.backoff_factor, reason)

    def _on_transient(self, request: Request, reason: str) -> None:
        _, host = self._register(request)
        backoff = self.backoffs.setdefault(host, Backoff())
        self._escalate(host, backoff, self.transient_start, 1.0, reason)

    def _escalate(
        self, host: str, backoff: Backoff, start: float, factor: float, reason: str
    ) -> None:
        now = time.monotonic()
        if now - backoff.escalated_at < backoff.delay:
            return  # answers to requests sent before the last step
        jittered_start = start * random.uniform(1.0, 1.25)  # noqa: S311 (not security)
        backoff.delay = min(max(jittered_start, backoff.delay * factor), self.backoff_max)
        backoff.escalated_at = now
        self._set_delays(host)
        stats = self.crawler.stats
        stats.inc_value(stat_key("throttle", "backoff", reason))
        stats.max_value(stat_key("throttle", "max_delay"), round(backoff.delay, 3))
        logger.info(
            "Slowing down %(host)s to one request every %(delay).2fs after %(reason)s",
            {"host": host, "delay": backoff.delay, "reason": reason},
            extra={"spider": self.crawler.spider},
        )

    def _on_clean(self, request: Request) -> None:
        _, host = self._register(request)
        backoff = self.backoffs.get(host)
        if backoff is None or not backoff.delay:
            return
        backoff.delay *= self.recovery
        if backoff.delay <= min(f for k, f in self.floors.items() if self.slot_hosts[k] == host):
            backoff.delay = 0.0
            logger.info(
                "%(host)s recovered from its back-off", {"host": host},
                extra={"spider": self.crawler.spider},
            )
        self._set_delays(host, lower=True)
