"""Per-slot rate caps, host-wide back-off, and slot rates that settle under the site's limit.

Endpoint families in ``BILI_THROTTLE_FAMILIES`` get a download slot of their
own, and no slot's delay falls under ``1 / rate``, whatever AutoThrottle says.
Risk answers and persistent transient failures pause or back off the whole
host; rate limiting lowers the blocked slot's rate, which then recovers. All
waits are slot delays. The rules are in docs/request-layer.md ("Throttling").

Settings: ``BILI_THROTTLE_ENABLED``, ``BILI_THROTTLE_MAX_RPS``,
``BILI_THROTTLE_FAMILIES``, ``BILI_THROTTLE_BACKOFF_{START,FACTOR,MAX}``,
``BILI_THROTTLE_TRANSIENT_START``, ``BILI_THROTTLE_FAILURE_{WINDOW,RATIO}``,
``BILI_THROTTLE_DECREASE``, ``BILI_THROTTLE_RECOVER_{SECONDS,STEP}``,
``BILI_THROTTLE_FORGET_SECONDS``. Stats: ``bilicrawl/throttle/slowdowns/<reason>``,
``bilicrawl/throttle/backoff/<answer>``, ``bilicrawl/throttle/max_delay``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import signals as scrapy_signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from bilicrawl import signals
from bilicrawl.config import ConfigError, get_bool, get_float, get_int
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SLOT_META = "download_slot"
RATE_WINDOW = 10.0
"""Seconds of a slot's answers its sending rate is measured over."""
CEILING_MARGIN = 0.95
"""Recovery stops at this fraction of the rate that was last blocked."""
PROBING, BACKING_OFF, RATE_LIMITED = 1, 2, 3
"""Back-off levels: risk answers in a row, each to a request sent after the last step."""


@dataclass
class Backoff:
    """The back-off of one host; it outlives Scrapy's idle-slot cleanup."""

    delay: float = 0.0
    """Extra delay imposed by recent failures; 0 when the host is healthy."""
    level: int = 0
    """Risk answers in a row (0 when calm; see PROBING, BACKING_OFF, RATE_LIMITED)."""
    stepped_at: float = float("-inf")
    """Monotonic time of the last step."""
    block_slot: str = ""
    """The slot whose risk answer began the current block."""
    block_rate: float = 0.0
    """The rate that slot was sending at when the block began, in requests per second."""
    failed: deque[bool] = field(default_factory=deque)
    """Whether each of the last answers failed, oldest first, since the last step."""


@dataclass
class SlotRate:
    """The allowed rate of one slot; it outlives Scrapy's idle-slot cleanup."""

    host: str
    cap: float
    """Requests per second never exceeded (the setting)."""
    rate: float
    """Requests per second allowed now."""
    ceiling: float | None = None
    """The rate measured when the last rate-limiting block began, until forgotten."""
    calm_since: float = float("-inf")
    """Monotonic time of the last rate limiting (or of the end of its back-off)."""
    raised_at: float = float("-inf")
    """Monotonic time of the last recovery step."""
    answers: deque[float] = field(default_factory=deque)
    """Monotonic times of the answers of the last RATE_WINDOW seconds since the last pause."""


class BiliThrottle:
    """Enforces the rate caps, backs off on failures and follows the site's rate limit."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not get_bool(settings, "BILI_THROTTLE_ENABLED"):
            raise NotConfigured("BILI_THROTTLE_ENABLED is off")
        jitter = get_float(settings, "DOWNLOAD_DELAY_JITTER", minimum=0, below=1)
        self.spacing = 1 / (1 - jitter)
        self.crawler = crawler
        self.host_cap = get_float(settings, "BILI_THROTTLE_MAX_RPS", positive=True)
        # Longest prefix first, so a specific family wins over a general one.
        self.families = sorted(
            (
                (prefix, _family_cap(prefix, rps))
                for prefix, rps in settings.getdict("BILI_THROTTLE_FAMILIES").items()
            ),
            key=lambda family: -len(family[0]),
        )
        self.backoff_start = get_float(settings, "BILI_THROTTLE_BACKOFF_START", positive=True)
        self.backoff_factor = get_float(settings, "BILI_THROTTLE_BACKOFF_FACTOR", minimum=1)
        self.backoff_max = get_float(settings, "BILI_THROTTLE_BACKOFF_MAX", positive=True)
        self.pause = get_float(settings, "BILI_THROTTLE_TRANSIENT_START", positive=True)
        self.window = get_int(settings, "BILI_THROTTLE_FAILURE_WINDOW", minimum=1)
        ratio = get_float(settings, "BILI_THROTTLE_FAILURE_RATIO", minimum=0, below=1)
        # The most failures among the window's answers that are no reason to slow down.
        self.most_failures = int(ratio * self.window)
        self.decrease = get_float(settings, "BILI_THROTTLE_DECREASE", positive=True, below=1)
        self.recover_seconds = get_float(settings, "BILI_THROTTLE_RECOVER_SECONDS", positive=True)
        self.recover_step = get_float(settings, "BILI_THROTTLE_RECOVER_STEP", positive=True)
        self.forget_seconds = get_float(settings, "BILI_THROTTLE_FORGET_SECONDS", positive=True)
        self.clock: Callable[[], float] = time.monotonic
        self.rates: dict[str, SlotRate] = {}
        """Rate of each slot."""
        self.backoffs: dict[str, Backoff] = {}
        """Back-off of each host."""
        connect = crawler.signals.connect
        connect(self._assign_slot, signal=scrapy_signals.request_scheduled)
        # Connected after AutoThrottle (a lower EXTENSIONS order), so the floors
        # are reapplied after each of its adjustments.
        connect(self._apply, signal=scrapy_signals.request_reached_downloader)
        connect(self._on_downloaded, signal=scrapy_signals.response_downloaded)
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

    def _register(self, request: Request) -> tuple[str, SlotRate]:
        """Return the slot key and rate of *request*, creating the rate on first sight."""
        url = urlparse_cached(request)
        key: str = request.meta.get(SLOT_META) or url.hostname or ""
        slot = self.rates.get(key)
        if slot is None:
            family = next((f for f in self.families if url.path.startswith(f[0])), None)
            cap = family[1] if family else self.host_cap
            slot = self.rates[key] = SlotRate(host=url.hostname or "", cap=cap, rate=cap)
        return key, slot

    def _apply(self, request: Request) -> None:
        key, slot = self._register(request)
        self._set_delays(slot.host, only=key)

    def _on_downloaded(self, request: Request) -> None:
        key, slot = self._register(request)
        now = self.clock()
        slot.answers.append(now)
        while slot.answers[0] <= now - RATE_WINDOW:
            slot.answers.popleft()
        self._set_delays(slot.host, only=key)

    def _set_delays(self, host: str, only: str | None = None, lower: bool = False) -> None:
        """Apply the rates and the host's back-off to the host's slots.

        Delays are only raised unless *lower*: AutoThrottle may want more. A
        slot whose delay is lowered is woken: Scrapy's downloader would
        otherwise wait out the old delay (a pause that has ended) before its
        next request.
        """
        backoff = self.backoffs.get(host, Backoff()).delay
        downloader = self.crawler.engine.downloader
        for key, rate in self.rates.items():
            slot = downloader.slots.get(key)
            if rate.host != host or slot is None or (only and key != only):
                continue
            delay = max(self.spacing / rate.rate, backoff)
            slot.delay = delay if lower else max(slot.delay, delay)
            if lower and slot.latercall:
                slot.latercall.cancel()
                slot.latercall = None
                downloader._process_queue(slot)  # private: reschedules at the new delay

    def _sent_after_step(self, request: Request, backoff: Backoff, now: float) -> bool:
        """Whether *request* left after the host's last step (its answer is news)."""
        latency: float = request.meta.get("download_latency", 0.0)
        return now - latency > backoff.stepped_at

    def _on_risk(self, request: Request, reason: str) -> None:
        key, slot = self._register(request)
        backoff = self.backoffs.setdefault(slot.host, Backoff())
        now = self.clock()
        if not self._sent_after_step(request, backoff, now):
            return
        if not backoff.level:
            backoff.block_slot, backoff.block_rate = key, self._measured_rate(slot, now)
        backoff.level += 1
        if backoff.level == PROBING:
            delay = self._jittered(self.pause)
            self._step(slot.host, backoff, delay, kind="probe", reason=reason, now=now)
            return
        grown = backoff.delay * self.backoff_factor
        delay = min(max(self._jittered(self.backoff_start), grown), self.backoff_max)
        if backoff.level == RATE_LIMITED:
            self._slow_down(backoff, now)
        self._step(slot.host, backoff, delay, kind="backoff", reason=reason, now=now)

    def _on_transient(self, request: Request, reason: str) -> None:
        _, slot = self._register(request)
        backoff = self.backoffs.setdefault(slot.host, Backoff())
        now = self.clock()
        if not self._sent_after_step(request, backoff, now):
            return
        self._count(backoff, failed=True)
        failures = sum(backoff.failed)
        if not backoff.delay and failures > self.most_failures:
            delay = self._jittered(self.pause)
            detail = f" ({failures} of its last {len(backoff.failed)} answers failed)"
            self._step(
                slot.host,
                backoff,
                delay,
                kind="persistent_failures",
                reason=reason,
                now=now,
                detail=detail,
            )

    def _on_clean(self, request: Request) -> None:
        key, slot = self._register(request)
        backoff = self.backoffs.get(slot.host)
        now = self.clock()
        if backoff is not None and self._sent_after_step(request, backoff, now):
            self._count(backoff, failed=False)
            if backoff.delay:
                self._end_backoff(slot.host, backoff, now)
                return
        if backoff is None or not backoff.delay:
            self._recover(key, slot, now)

    def _count(self, backoff: Backoff, *, failed: bool) -> None:
        """Remember whether the host's latest answer failed, in a window of the last ones."""
        backoff.failed.append(failed)
        if len(backoff.failed) > self.window:
            backoff.failed.popleft()

    def _measured_rate(self, slot: SlotRate, now: float) -> float:
        """The rate *slot* was really sending at, never above its allowed rate."""
        answers = [t for t in slot.answers if t > now - RATE_WINDOW]
        if len(answers) < 2 or answers[-1] == answers[0]:
            return slot.rate
        return min(slot.rate, (len(answers) - 1) / (answers[-1] - answers[0]))

    def _slow_down(self, backoff: Backoff, now: float) -> None:
        """Rate limiting: the blocked slot's rate drops under the rate that was blocked."""
        slot = self.rates[backoff.block_slot]
        slot.ceiling = backoff.block_rate
        slot.rate = backoff.block_rate * self.decrease
        slot.calm_since = now
        self.crawler.stats.inc_value(stat_key("throttle", "slowdowns", "rate_limited"))
        logger.info(
            "%(slot)s is rate-limited at %(blocked).2f requests/s: lowering it to %(rate).2f",
            {"slot": backoff.block_slot, "blocked": backoff.block_rate, "rate": slot.rate},
            extra={"spider": self.crawler.spider},
        )

    def _recover(self, key: str, slot: SlotRate, now: float) -> None:
        """After each calm period, raise the rate one step toward the cap or the ceiling."""
        if slot.ceiling is not None and now - slot.calm_since >= self.forget_seconds:
            slot.ceiling = None
        target = slot.cap if slot.ceiling is None else min(slot.cap, slot.ceiling * CEILING_MARGIN)
        calm = now - max(slot.calm_since, slot.raised_at)
        if slot.rate >= target or calm < self.recover_seconds:
            return
        slot.rate = min(target, slot.rate + self.recover_step * slot.cap)
        slot.raised_at = now
        self._set_delays(slot.host, only=key, lower=True)
        logger.info(
            "Raising %(slot)s to %(rate).2f requests/s after a calm period",
            {"slot": key, "rate": slot.rate},
            extra={"spider": self.crawler.spider},
        )

    def _jittered(self, delay: float) -> float:
        return delay * random.uniform(1.0, 1.25)  # noqa: S311 (not security)

    def _step(
        self,
        host: str,
        backoff: Backoff,
        delay: float,
        *,
        kind: str,
        reason: str,
        now: float,
        detail: str = "",
    ) -> None:
        """Slow *host* down to one request every *delay* s: a slowdown of *kind*."""
        backoff.delay = delay
        backoff.stepped_at = now
        backoff.failed.clear()  # the answers to come are news
        self._set_delays(host)
        stats = self.crawler.stats
        stats.inc_value(stat_key("throttle", "slowdowns", kind))
        stats.inc_value(stat_key("throttle", "backoff", reason))
        stats.max_value(stat_key("throttle", "max_delay"), round(delay, 3))
        # A probe is routine: a back-off or failures that persist are news.
        level = logging.DEBUG if kind == "probe" else logging.INFO
        logger.log(
            level,
            "Slowing down %(host)s to one request every %(delay).2fs after %(reason)s%(detail)s",
            {"host": host, "delay": delay, "reason": reason, "detail": detail},
            extra={"spider": self.crawler.spider},
        )

    def _end_backoff(self, host: str, backoff: Backoff, now: float) -> None:
        if backoff.level >= RATE_LIMITED:
            self.rates[backoff.block_slot].calm_since = now
        if backoff.level >= BACKING_OFF:
            logger.info(
                "%(host)s recovered from its back-off",
                {"host": host},
                extra={"spider": self.crawler.spider},
            )
        # Answers to requests sent before the last step stay old news.
        self.backoffs[host] = Backoff(stepped_at=backoff.stepped_at, failed=backoff.failed)
        for slot in self.rates.values():
            if slot.host == host:
                slot.answers.clear()  # the rate is measured since the last pause
        self._set_delays(host, lower=True)


def _family_cap(prefix: str, rps: Any) -> float:
    try:
        cap = float(rps)
    except (TypeError, ValueError):
        cap = 0.0
    if not cap > 0:
        raise ConfigError(
            f"BILI_THROTTLE_FAMILIES[{prefix!r}] must be a positive number, not {rps!r}"
        )
    return cap
