"""Per-host rate cap and risk-control back-off, on Scrapy's download slots.

Each download slot (one per host) gets a delay floor of ``1 / BILI_THROTTLE_MAX_RPS``
seconds between requests, so the cap holds whatever AutoThrottle, which keeps
adjusting the delay to latency, decides. Waits are slot delays: nothing sleeps.

When Bilibili answers with risk control (see ``bilicrawl.signals.risk_control``)
the whole slot slows down: its back-off delay jumps to at least
``BILI_THROTTLE_BACKOFF_START``, with up to 25 % random jitter, and grows by
``BILI_THROTTLE_BACKOFF_FACTOR`` for every further block up to
``BILI_THROTTLE_BACKOFF_MAX`` (at most one step per back-off period, so the
answers to requests already in flight count once). Each clean answer then
shrinks it by ``BILI_THROTTLE_RECOVERY`` until it falls under the floor. The
first block after a calm period also raises the floor itself by
``BILI_THROTTLE_RATCHET``: the rate that got the crawl blocked is not tried
again, so the crawl settles under the site's limit instead of bouncing off it.
Transient failures (5xx, timeouts, broken bodies) set a back-off of
``BILI_THROTTLE_TRANSIENT_START`` that does not grow and leaves the floor alone:
they say the server had a hiccup, not that the crawl is too fast.

Settings: ``BILI_THROTTLE_ENABLED`` (True), ``BILI_THROTTLE_MAX_RPS`` (2.0),
``BILI_THROTTLE_BACKOFF_START`` (10.0 s), ``BILI_THROTTLE_BACKOFF_FACTOR`` (2.0),
``BILI_THROTTLE_BACKOFF_MAX`` (600.0 s), ``BILI_THROTTLE_RECOVERY`` (0.7),
``BILI_THROTTLE_RATCHET`` (1.25), ``BILI_THROTTLE_TRANSIENT_START`` (1.0 s).
Slot jitter (``DOWNLOAD_DELAY_JITTER``) is accounted for: the floor is widened
so that even the shortest jittered delay respects the cap.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy import signals as scrapy_signals
from scrapy.exceptions import NotConfigured

from bilicrawl import signals
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@dataclass
class SlotThrottle:
    """Throttle state of one download slot; it outlives Scrapy's idle-slot cleanup."""

    floor: float
    """Smallest delay between two requests, in seconds."""
    backoff: float = 0.0
    """Extra delay imposed by recent failures; 0 when the slot is healthy."""
    escalated_at: float = float("-inf")
    """Monotonic time of the last back-off step."""

    def delay(self) -> float:
        return max(self.floor, self.backoff)


class BiliThrottle:
    """Enforces the per-slot rate cap and backs off on risk control."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("BILI_THROTTLE_ENABLED"):
            raise NotConfigured("BILI_THROTTLE_ENABLED is off")
        max_rps = settings.getfloat("BILI_THROTTLE_MAX_RPS")
        if max_rps <= 0:
            raise ValueError(f"BILI_THROTTLE_MAX_RPS must be positive, not {max_rps}")
        jitter = settings.getfloat("DOWNLOAD_DELAY_JITTER")
        if not 0 <= jitter < 1:
            raise ValueError(f"DOWNLOAD_DELAY_JITTER must be in [0, 1), not {jitter}")
        self.crawler = crawler
        self.base_floor = 1 / max_rps / (1 - jitter)
        self.backoff_start = settings.getfloat("BILI_THROTTLE_BACKOFF_START")
        self.backoff_factor = settings.getfloat("BILI_THROTTLE_BACKOFF_FACTOR")
        self.backoff_max = settings.getfloat("BILI_THROTTLE_BACKOFF_MAX")
        self.recovery = settings.getfloat("BILI_THROTTLE_RECOVERY")
        self.ratchet = settings.getfloat("BILI_THROTTLE_RATCHET")
        self.transient_start = settings.getfloat("BILI_THROTTLE_TRANSIENT_START")
        self.slots: dict[str, SlotThrottle] = {}
        connect = crawler.signals.connect
        # Connected after AutoThrottle (a lower EXTENSIONS order), so the floor
        # is reapplied after each of its adjustments.
        connect(self._apply, signal=scrapy_signals.request_reached_downloader)
        connect(self._apply, signal=scrapy_signals.response_downloaded)
        connect(self._on_risk, signal=signals.risk_control)
        connect(self._on_transient, signal=signals.transient_failure)
        connect(self._on_clean, signal=signals.clean_answer)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _slot(self, request: Request) -> tuple[str, SlotThrottle, Slot | None]:
        key: str = request.meta.get("download_slot", "")
        state = self.slots.setdefault(key, SlotThrottle(floor=self.base_floor))
        return key, state, self.crawler.engine.downloader.slots.get(key)

    def _apply(self, request: Request) -> None:
        _, state, slot = self._slot(request)
        if slot is not None:
            slot.delay = max(slot.delay, state.delay())

    def _on_risk(self, request: Request, reason: str) -> None:
        key, state, _ = self._slot(request)
        if state.backoff == 0:
            state.floor = min(state.floor * self.ratchet, self.backoff_max)
        self._escalate(key, state, self.backoff_start, reason)
        self._apply(request)

    def _on_transient(self, request: Request, reason: str) -> None:
        key, state, _ = self._slot(request)
        self._escalate(key, state, self.transient_start, reason, factor=1.0)
        self._apply(request)

    def _escalate(
        self, key: str, state: SlotThrottle, start: float, reason: str, factor: float | None = None
    ) -> None:
        now = time.monotonic()
        if now - state.escalated_at < state.backoff:
            return  # answers to requests sent before the last step
        grown = max(start, state.backoff * (factor or self.backoff_factor))
        state.backoff = min(grown * random.uniform(1.0, 1.25), self.backoff_max)  # noqa: S311
        state.escalated_at = now
        stats = self.crawler.stats
        stats.inc_value(stat_key("throttle", "backoff", reason))
        stats.max_value(stat_key("throttle", "max_delay"), round(state.delay(), 3))
        logger.info(
            "Slowing down %(slot)s to one request every %(delay).2fs after %(reason)s",
            {"slot": key, "delay": state.delay(), "reason": reason},
            extra={"spider": self.crawler.spider},
        )

    def _on_clean(self, request: Request) -> None:
        key, state, slot = self._slot(request)
        if not state.backoff:
            return
        state.backoff *= self.recovery
        if state.backoff <= state.floor:
            state.backoff = 0.0
            logger.info(
                "%(slot)s recovered: one request every %(delay).2fs",
                {"slot": key, "delay": state.floor},
                extra={"spider": self.crawler.spider},
            )
        if slot is not None:
            slot.delay = state.delay()
