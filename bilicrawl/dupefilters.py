"""Request fingerprints that ignore WBI's volatile query parameters.

A WBI-signed URL changes every second (``wts``) and with it ``w_rid``, so a
signed and an unsigned request for the same resource must fingerprint alike.
:class:`BiliRequestFingerprinter` (``REQUEST_FINGERPRINTER_CLASS``) drops those
parameters and hands the request to Scrapy's default fingerprinter, so Scrapy's
dupefilter, HTTP cache and scheduler all see the same fingerprint.
scrapy-redis 0.9.1's ``RFPDupeFilter`` hashes requests with its own function
instead; :class:`RedisDupeFilter` makes it use :class:`BiliRequestFingerprinter`
(built from the settings, whatever ``REQUEST_FINGERPRINTER_CLASS`` says).

Settings: ``BILI_DUPEFILTER_IGNORE_PARAMS`` (``["w_rid", "wts"]``), the query
parameters left out; the signature's own ``w_rid`` and ``wts`` are always left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit
from weakref import WeakKeyDictionary

from scrapy.utils.request import RequestFingerprinter
from scrapy_redis.dupefilter import RFPDupeFilter

from bilicrawl.signing import SIGNATURE_PARAMS

if TYPE_CHECKING:
    from collections.abc import Container, Iterable
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings


def strip_query_params(url: str, names: Container[str]) -> str:
    """Return *url* without the query parameters called *names*, the rest untouched."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        pair
        for pair in parts.query.split("&")
        if unquote_plus(pair.partition("=")[0]) not in names
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))


class BiliRequestFingerprinter:
    """Scrapy's default fingerprint of the request without the ignored query parameters."""

    def __init__(self, ignore_params: Iterable[str] = ()) -> None:
        self.ignore_params = SIGNATURE_PARAMS | frozenset(ignore_params)
        self._default = RequestFingerprinter()
        self._cache: WeakKeyDictionary[Request, bytes] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls.from_settings(crawler.settings)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        """Build one from settings alone: scrapy-redis builds its dupefilter without a crawler."""
        return cls(settings.getlist("BILI_DUPEFILTER_IGNORE_PARAMS"))

    def fingerprint(self, request: Request) -> bytes:
        if request not in self._cache:
            url = strip_query_params(request.url, self.ignore_params)
            stripped = request if url == request.url else request.replace(url=url)
            self._cache[request] = self._default.fingerprint(stripped)
        return self._cache[request]


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
