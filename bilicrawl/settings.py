"""Project settings: every default bilicrawl reads, in one place.

Components never import this module; they read ``crawler.settings``, so
``custom_settings``, ``-s NAME=VALUE`` and test overrides all apply. Values that
come from the environment are read here and nowhere else.
"""

from __future__ import annotations

import os

from scrapy.settings import default_settings

BOT_NAME = "bilicrawl"
SPIDER_MODULES = ["bilicrawl.spiders"]
NEWSPIDER_MODULE = "bilicrawl.spiders"

# The API hosts serve JSON to browsers; their robots.txt is written for pages.
ROBOTSTXT_OBEY = False
FEED_EXPORT_ENCODING = "utf-8"
# No control port per crawl; RemoteControl also leaves the base list (importing it costs 0.2 s).
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
EXTENSIONS_BASE = {
    path: order
    for path, order in default_settings.EXTENSIONS_BASE.items()
    if path != "scrapy.extensions.remote_control.RemoteControl"
}
# `scrapy crawl` is bilicrawl's own: one-line errors, an exit status that says how it went.
COMMANDS_MODULE = "bilicrawl.commands"
# No line per request or item; bilicrawl's summary instead of the stats dict (STATS_DUMP).
LOG_LEVEL = "INFO"
STATS_DUMP = False

# --- Bilibili hosts: point them all at one server to test, demo or benchmark.
BILI_API_URL = os.environ.get("BILI_API_URL", "https://api.bilibili.com")
BILI_COMMENT_URL = os.environ.get("BILI_COMMENT_URL", "https://comment.bilibili.com")
BILI_WWW_URL = os.environ.get("BILI_WWW_URL", "https://www.bilibili.com")
BILI_LIVE_API_URL = os.environ.get("BILI_LIVE_API_URL", "https://api.live.bilibili.com")
BILI_INTL_API_URL = os.environ.get("BILI_INTL_API_URL", "https://api.bilibili.tv")

# --- Request headers (bilicrawl.middlewares.headers).
BILI_HEADERS_ENABLED = True
# One User-Agent is picked per crawl: cookies such as buvid3 are bound to it.
BILI_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
]
BILI_REFERER = "https://www.bilibili.com/"

# --- Bilibili's JSON envelope (bilicrawl.middlewares.api).
# Codes worth retrying: risk control, rate limiting and server trouble.
BILI_RETRY_API_CODES = [-412, -352, -799, -509, -500, -503, -504]
# Codes that mark the host as risk-controlled: they also slow the whole host down.
BILI_RISK_API_CODES = [-412, -352, -799, -509]
BILI_RETRY_HTTP_CODES = [408, 412, 429, 500, 502, 503, 504, 522, 524]
BILI_RISK_HTTP_CODES = [412, 429]
# Scrapy's RetryMiddleware keeps network errors; the API middleware classifies statuses.
RETRY_HTTP_CODES: list[int] = []
RETRY_TIMES = 10
DOWNLOAD_TIMEOUT = 30

# --- Throttling (bilicrawl.extensions.throttle.BiliThrottle).
BILI_THROTTLE_ENABLED = True
# Hard cap per download slot (one slot per host): never more requests per second.
BILI_THROTTLE_MAX_RPS = 1.0
# Path prefix -> requests per second, on a download slot of its own (risk control bites here).
BILI_THROTTLE_FAMILIES = {"/x/space/": 0.5, "/x/relation/": 0.5}
# Back-off after risk answers and failure bursts (docs/request-layer.md, "Throttling").
BILI_THROTTLE_BACKOFF_START = 10.0
BILI_THROTTLE_BACKOFF_FACTOR = 2.0
BILI_THROTTLE_BACKOFF_MAX = 600.0
BILI_THROTTLE_TRANSIENT_START = 0.5
BILI_THROTTLE_FAILURE_WINDOW = 10
BILI_THROTTLE_FAILURE_RATIO = 0.5
# Rate limiting: how a lasting block lowers the rate and how it recovers (same section).
BILI_THROTTLE_DECREASE = 0.8
BILI_THROTTLE_RECOVER_SECONDS = 60.0
BILI_THROTTLE_RECOVER_STEP = 0.1
BILI_THROTTLE_FORGET_SECONDS = 1800.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# The cap above is exact only without Scrapy's random ±50% delay.
DOWNLOAD_DELAY_JITTER = 0

DOWNLOADER_MIDDLEWARES = {
    # Outermost: sees only final failures, and counts them for the summary.
    "bilicrawl.middlewares.outcome.RequestOutcomeMiddleware": 10,
    # Replaced by the header middleware: one browser UA per crawl, and the Accept headers.
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": None,
    "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware": None,
    # Off: a cost per request with nothing to do here (no off-site links, auth, meta refresh).
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "bilicrawl.middlewares.headers.BrowserHeadersMiddleware": 390,
    # After decompression (590), before RetryMiddleware (550), whose accounting it reuses.
    "bilicrawl.middlewares.api.BiliApiMiddleware": 560,
    # Sees a -352 before the API middleware retries it, to drop stale keys first.
    "bilicrawl.middlewares.wbi.WbiSignMiddleware": 570,
    # Right before Scrapy's CookiesMiddleware (700), which puts what this one adds in its jar.
    "bilicrawl.middlewares.cookies.BiliCookiesMiddleware": 690,
}

# --- Downloads (bilicrawl.handlers): sign WBI requests as sent, then download with
# BILI_DOWNLOAD_HANDLER, or scrapy-impersonate as the curl_cffi browser BILI_IMPERSONATE names.
DOWNLOAD_HANDLERS = {
    "http": "bilicrawl.handlers.BiliDownloadHandler",
    "https": "bilicrawl.handlers.BiliDownloadHandler",
}
BILI_DOWNLOAD_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
BILI_IMPERSONATE = ""

# --- WBI signing (bilicrawl.middlewares.wbi).
BILI_WBI_KEY_TTL = 12 * 3600  # the site rotates its keys daily; -403/-352 also refresh them
# Signed requests under these paths also carry dm_img_* (space endpoints want them).
BILI_DM_IMG_PATHS = ["/x/space/wbi/"]

# --- Cookies (bilicrawl.middlewares.cookies): buvid3/4, and a login from the environment.
BILI_COOKIES_ENABLED = True
BILI_COOKIES_RETRY_DELAY = 60.0  # seconds before a failed buvid fetch is tried again
BILI_SESSDATA = os.environ.get("BILI_SESSDATA", "")
BILI_JCT = os.environ.get("BILI_JCT", "")
BILI_DEDEUSERID = os.environ.get("BILI_DEDEUSERID", "")

# --- Deduplication: fingerprints ignore w_rid/wts, so signed and unsigned requests match.
REQUEST_FINGERPRINTER_CLASS = "bilicrawl.dupefilters.BiliRequestFingerprinter"
BILI_DUPEFILTER_IGNORE_PARAMS = ["w_rid", "wts"]

# No Referer of Scrapy's (the header middleware sends the page's, as a browser does).
REFERRER_POLICY = "no-referrer"
SPIDER_MIDDLEWARES = {
    # Off: follow-ups (pages, fan-out) are not "depth", and their URLs are never too long.
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    # Passes each input's tag on to what its callbacks yield, for the input ledger.
    "bilicrawl.spidermiddlewares.inputs.InputTags": 800,
}

EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "scrapy.extensions.corestats.CoreStats": None,
    "bilicrawl.extensions.corestats.CoreStats": 0,
    "bilicrawl.extensions.throttle.BiliThrottle": 100,
    "bilicrawl.extensions.circuit_breaker.RiskCircuitBreaker": 110,
    "bilicrawl.extensions.circuit_breaker.DeadHostBreaker": 115,
    "bilicrawl.extensions.shutdown.FastShutdown": 120,
    "bilicrawl.extensions.inputs.InputLedger": 125,
    "bilicrawl.extensions.store_guard.StoreGuard": 127,
    "bilicrawl.extensions.summary.CrawlSummary": 130,
    "bilicrawl.extensions.gc.GcTuning": 140,
}
# The garbage collector runs every this many allocations while crawling (0: untouched).
BILI_GC_THRESHOLD = 10000
# Close after this many risk answers in a row, or a run of them lasting SECONDS (0: never).
BILI_CIRCUIT_BREAKER_THRESHOLD = 10
BILI_CIRCUIT_BREAKER_SECONDS = 300.0
# Close when a host gives only network errors: this many in a row, or for SECONDS (0: never).
BILI_DEAD_HOST_THRESHOLD = 20
BILI_DEAD_HOST_SECONDS = 60.0

# --- Spiders.
# Requests waiting in the scheduler, at most about: inputs are read as room frees up.
BILI_INPUT_BACKLOG = 1000
# "detail": one signed request per video; "view": two unsigned ones (view, then tags).
BILI_VIDEO_ENDPOINT = "detail"
# Users read per list at most (the site serves 1000 followers, 100 followings of others).
BILI_FOLLOWERS_CAP = 1000
BILI_FOLLOWINGS_CAP = 100
# Danmaku segments: "wbi" (signed, as the player asks) or "web" (the unsigned seg.so).
BILI_DANMAKU_SEG_ENDPOINT = "wbi"
# The XML pool: "list" (list.so on the API host) or "comment" (<cid>.xml on BILI_COMMENT_URL).
BILI_DANMAKU_XML_ENDPOINT = "list"
# Ids per /x/article/cards request (a batch the API rejects is split and asked again).
BILI_CARDS_BATCH = 20
# Uploads: "arc_search" (signed, 50 a page) or "series" (unsigned, 100 a page).
BILI_UPLOADS_ENDPOINT = "arc_search"

# --- Items and storage.
# Items of a response stored one at a time: Scrapy's 100 workers cost a quarter of the CPU.
CONCURRENT_ITEMS = 1
ITEM_PIPELINES = {"bilicrawl.pipelines.store.StorePipeline": 300}
# User ids stored as keyed hashes, names and faces left out (README, "Personal data").
BILI_PSEUDONYMIZE = False
BILI_PSEUDONYM_KEY = os.environ.get("BILI_PSEUDONYM_KEY", "")
# sqlite:///relative.db, sqlite:////absolute.db or mongodb://host/db; empty: the aliases below.
BILI_STORE_URI = os.environ.get("BILI_STORE_URI", "")
MONGO_URI = os.environ.get("MONGO_URI", "")
MONGO_DATABASE = os.environ.get("MONGO_DATABASE", "bilicrawl")
MONGO_CLIENT_CLASS = "pymongo.MongoClient"
SQLITE_PATH = os.environ.get("SQLITE_PATH", "data/bilicrawl.db")
# Documents per write (rows of batch items: BILI_STORE_ROWS_BATCH_SIZE).
BILI_STORE_BATCH_SIZE = 500
# Seconds a SQLite write waits for another process's lock before it counts as failed.
SQLITE_BUSY_TIMEOUT = 5.0
# Waits before each retry of a failed batch; then it is dead-lettered and the crawl closes.
BILI_STORE_RETRY_DELAYS = [0.5, 2.0, 5.0]
BILI_DEAD_LETTER_DIR = ""  # empty: beside the SQLite file, or "data" with MongoDB
# Danmaku rows per write: a large sorted batch is far cheaper per row (docs/danmaku.md).
BILI_STORE_ROWS_BATCH_SIZE = 50_000
# Buffered documents are written at least this often: a kill loses at most this much.
BILI_STORE_FLUSH_SECONDS = 5.0
# Seconds to find a MongoDB server at start before giving up with the host named.
MONGO_CONNECT_TIMEOUT = 5.0
