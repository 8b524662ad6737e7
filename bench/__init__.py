"""bilicrawl's benchmarks: ``.venv/bin/python -m bench`` (or ``make bench``) runs them all.

This package imports nothing, so a client run as ``python -m bench.<module>``
(the plain Scrapy spider, the raw aiohttp client) loads only what it uses.
"""
