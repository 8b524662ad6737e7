"""scrapy-redis integration: a Redis dupefilter that fingerprints as bilicrawl does.

scrapy-redis 0.9.1's ``RFPDupeFilter`` hashes requests with its own function, not
with ``REQUEST_FINGERPRINTER_CLASS``; :class:`RedisDupeFilter` makes it use
:class:`~bilicrawl.dupefilters.BiliRequestFingerprinter`, built from the
settings. It lives apart from the fingerprinter so that a crawl without Redis
does not import scrapy-redis and redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_redis.dupefilter import RFPDupeFilter

from bilicrawl.dupefilters import BiliRequestFingerprinter

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.settings import BaseSettings


class RedisDupeFilter(RFPDupeFilter):  # type: ignore[misc]  # scrapy-redis is untyped
    """scrapy-redis's dupefilter with :class:`BiliRequestFingerprinter` fingerprints."""

    def __init__(
        self,
        server: Any,
        key: str,
        debug: bool = False,
        fingerprinter: BiliRequestFingerprinter | None = None,
    ) -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter or BiliRequestFingerprinter()

    # scrapy-redis builds instances with cls(server, key=..., debug=...): set the
    # fingerprinter afterwards, from the same settings.
    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        dupefilter: Self = super().from_settings(settings)
        dupefilter.fingerprinter = BiliRequestFingerprinter.from_settings(settings)
        return dupefilter

    @classmethod
    def from_spider(cls, spider: Spider) -> Self:
        dupefilter: Self = super().from_spider(spider)
        dupefilter.fingerprinter = BiliRequestFingerprinter.from_settings(spider.settings)
        return dupefilter

    def request_fingerprint(self, request: Request) -> str:
        """Return the hex fingerprint stored in Redis."""
        return self.fingerprinter.fingerprint(request).hex()
