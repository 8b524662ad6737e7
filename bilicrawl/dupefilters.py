"""Request fingerprints that ignore WBI's volatile query parameters.

A WBI-signed URL changes every second (``wts``) and with it ``w_rid``, so a
signed and an unsigned request for the same resource must fingerprint alike.
:class:`BiliRequestFingerprinter` (``REQUEST_FINGERPRINTER_CLASS``) drops those
parameters and hands the request to Scrapy's default fingerprinter, so Scrapy's
dupefilter, HTTP cache and scheduler all see the same fingerprint.
For scrapy-redis, which hashes requests with its own function, see
:mod:`bilicrawl.distributed`.

Settings: ``BILI_DUPEFILTER_IGNORE_PARAMS`` (``["w_rid", "wts"]``), the query
parameters left out; the signature's own ``w_rid`` and ``wts`` are always left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit, urlunsplit
from weakref import WeakKeyDictionary

from scrapy.utils.request import RequestFingerprinter

from bilicrawl.signing import SIGNATURE_PARAMS

if TYPE_CHECKING:
    from collections.abc import Container, Iterable
    from typing import Self

    from scrapy import Request
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
        fingerprint = self._cache.get(request)
        if fingerprint is None:
            url = request.url
            query = url.partition("?")[2]
            # Most URLs carry none of the ignored parameters: skip parsing them.
            if any(f"{name}=" in query for name in self.ignore_params):
                url = strip_query_params(url, self.ignore_params)
            stripped = request if url == request.url else request.replace(url=url)
            fingerprint = self._cache[request] = self._default.fingerprint(stripped)
        return fingerprint
