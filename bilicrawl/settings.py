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
# No control port per crawl: neither Scrapy's telnet console nor its remote-control server.
# The latter is also left out of Scrapy's base extensions: Scrapy imports every extension
# it lists, even a disabled one, and this one imports aiohttp (0.2 s of every start-up).
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
EXTENSIONS_BASE = {
    path: order
    for path, order in default_settings.EXTENSIONS_BASE.items()
    if path != "scrapy.extensions.remote_control.RemoteControl"
}
# `scrapy crawl` is bilicrawl's own: one-line errors, an exit status that says how it went.
COMMANDS_MODULE = "bilicrawl.commands"
# INFO: what the crawl does and decides, without a line per request or item; the crawl
# ends with bilicrawl's summary block instead of Scrapy's raw stats dict (STATS_DUMP=True
# brings it back).
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
# Network errors (timeouts, dropped connections, data loss) stay with Scrapy's
# RetryMiddleware; HTTP statuses are classified by the API middleware instead.
RETRY_HTTP_CODES: list[int] = []
RETRY_TIMES = 10
DOWNLOAD_TIMEOUT = 30

# --- Throttling (bilicrawl.extensions.throttle.BiliThrottle).
BILI_THROTTLE_ENABLED = True
# Hard cap per download slot (one slot per host): never more requests per second.
BILI_THROTTLE_MAX_RPS = 1.0
# Endpoint families with a download slot and a stricter cap of their own
# (path prefix -> requests per second): space and relation lists are where
# Bilibili's risk control bites first.
BILI_THROTTLE_FAMILIES = {"/x/space/": 0.5, "/x/relation/": 0.5}
# Back-off, host-wide: a risk answer from a calm host pauses it TRANSIENT_START once, a
# probe (random 412s happen); a second one in a row backs off from START, growing by
# FACTOR on each further one up to MAX. Transient failures (5xx, resets, timeouts, broken
# bodies) are only retried, unless more than FAILURE_RATIO of the host's last
# FAILURE_WINDOW answers failed: then they pause it TRANSIENT_START, not growing
# (FAILURE_RATIO = 0: every transient failure pauses). A clean answer ends the pause.
BILI_THROTTLE_BACKOFF_START = 10.0
BILI_THROTTLE_BACKOFF_FACTOR = 2.0
BILI_THROTTLE_BACKOFF_MAX = 600.0
BILI_THROTTLE_TRANSIENT_START = 0.5
BILI_THROTTLE_FAILURE_WINDOW = 10
BILI_THROTTLE_FAILURE_RATIO = 0.5
# Rate limiting: a block that outlives the START pause lowers the slot's rate to DECREASE
# times the rate it was sending at when the block began, remembered as its ceiling. After
# each RECOVER_SECONDS without such a block the rate grows by RECOVER_STEP of the cap, up
# to the cap or 95% of the ceiling; the ceiling is forgotten after FORGET_SECONDS.
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
    # Off, each a cost on every request with nothing to do for these APIs: spiders build
    # every URL from the BILI_*_URL hosts (no off-site links), no host asks for HTTP auth,
    # JSON answers have no <meta refresh>.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "bilicrawl.middlewares.headers.BrowserHeadersMiddleware": 390,
    # Between RetryMiddleware (550) and HttpCompressionMiddleware (590), so it
    # sees decompressed bodies and its retries reuse Scrapy's retry accounting.
    "bilicrawl.middlewares.api.BiliApiMiddleware": 560,
    # Sees bodies after decompression (590) and before the API middleware turns
    # a -352 into a retry, so it can drop stale keys first.
    "bilicrawl.middlewares.wbi.WbiSignMiddleware": 570,
    # Right before Scrapy's CookiesMiddleware (700), which puts what this one adds in its jar.
    "bilicrawl.middlewares.cookies.BiliCookiesMiddleware": 690,
}

# --- Downloads (bilicrawl.handlers): this handler signs WBI requests as they are sent
# and hands them to BILI_DOWNLOAD_HANDLER, or to scrapy-impersonate's handler when
# BILI_IMPERSONATE names a curl_cffi browser ("chrome", "firefox", "safari"...; empty: off).
DOWNLOAD_HANDLERS = {
    "http": "bilicrawl.handlers.BiliDownloadHandler",
    "https": "bilicrawl.handlers.BiliDownloadHandler",
}
BILI_DOWNLOAD_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
BILI_IMPERSONATE = ""

# --- WBI signing (bilicrawl.middlewares.wbi).
BILI_WBI_KEY_TTL = 12 * 3600  # the site rotates its keys daily; -403/-352 also refresh them
# Signed requests under these paths also carry the dm_img_* risk parameters (drawn once
# per crawl): the space endpoints answer -352 to anonymous clients without them.
BILI_DM_IMG_PATHS = ["/x/space/wbi/"]

# --- Cookies (bilicrawl.middlewares.cookies): buvid3/buvid4 from /x/frontend/finger/spi,
# plus an optional login. The secrets are read from the environment and never logged.
BILI_COOKIES_ENABLED = True
BILI_COOKIES_RETRY_DELAY = 60.0  # seconds before a failed buvid fetch is tried again
BILI_SESSDATA = os.environ.get("BILI_SESSDATA", "")
BILI_JCT = os.environ.get("BILI_JCT", "")
BILI_DEDEUSERID = os.environ.get("BILI_DEDEUSERID", "")

# --- Deduplication: fingerprints ignore w_rid/wts, so signed and unsigned requests match.
REQUEST_FINGERPRINTER_CLASS = "bilicrawl.dupefilters.BiliRequestFingerprinter"
BILI_DUPEFILTER_IGNORE_PARAMS = ["w_rid", "wts"]

# The Referer middleware stays, with no referrer of its own: by default it would send the
# previous API URL (signature included) as the Referer of follow-up requests, where a browser
# sends the page (BrowserHeadersMiddleware sets it, on redirects too). Without it, Scrapy's
# RedirectMiddleware warns at every start. Off: bilicrawl's own follow-ups (pages, fan-out)
# are not crawled "in depth", nor are their URLs ever too long.
REFERRER_POLICY = "no-referrer"
SPIDER_MIDDLEWARES = {
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
# Python's collector runs every BILI_GC_THRESHOLD allocations while crawling, not every
# 700 (0: leave it alone); see bilicrawl/extensions/gc.py.
BILI_GC_THRESHOLD = 10000
# Close the crawl after this many consecutive risk-control answers (0: never), or when
# consecutive risk answers (at least 3) have lasted BILI_CIRCUIT_BREAKER_SECONDS (0: no
# time rule). With the default back-off a lasting ban is recognised in about 5 minutes.
BILI_CIRCUIT_BREAKER_THRESHOLD = 10
BILI_CIRCUIT_BREAKER_SECONDS = 300.0
# Close the crawl when a host gives nothing but network errors (refused, DNS, timeouts):
# this many in a row (0: never), or at least 3 in a row over BILI_DEAD_HOST_SECONDS (0: no
# time rule). Any response at all, whatever its status, resets the run.
BILI_DEAD_HOST_THRESHOLD = 20
BILI_DEAD_HOST_SECONDS = 60.0

# --- Spiders.
# Inputs are read as the crawl has room for them: at most about this many requests
# wait in the scheduler, so an ids file of any size keeps memory flat.
BILI_INPUT_BACKLOG = 1000
# "detail": one WBI-signed request per video (video and tags together);
# "view": two unsigned requests (view, then tags), if the signed one is blocked.
BILI_VIDEO_ENDPOINT = "detail"
# The relation spider stops reading a list after this many users (the site itself stops
# at 1000 followers and 100 followings of other users, fewer when not logged in).
BILI_FOLLOWERS_CAP = 1000
BILI_FOLLOWINGS_CAP = 100
# Danmaku segments (danmaku spider): "wbi", the signed /x/v2/dm/wbi/web/seg.so the site's
# player uses, or "web", the unsigned /x/v2/dm/web/seg.so.
BILI_DANMAKU_SEG_ENDPOINT = "wbi"
# The XML pool (danmaku spider, -a source=xml|both): "list", /x/v1/dm/list.so?oid= on the
# API host, or "comment", /<cid>.xml on BILI_COMMENT_URL (another host, throttled apart).
BILI_DANMAKU_XML_ENDPOINT = "list"
# Ids per /x/article/cards request (article spider, -a cards=...). The limit is not
# documented: a batch the API rejects is split and asked again.
BILI_CARDS_BATCH = 20
# A user's uploads (user spider, -a uploads=true): "arc_search", the signed space list
# (50 a page), or "series", the unsigned /x/series/recArchivesByKeywords (100 a page).
BILI_UPLOADS_ENDPOINT = "arc_search"

# --- Items and storage.
# Items of one response go through the pipelines one at a time. Scrapy starts this many
# workers for every response (default 100), ~4 µs each even when the callback yields one
# item, as the video spider does: with 100, a quarter of a video crawl's CPU (1, 2 and 4
# measured alike, x1.36-1.5 faster). The danmaku spider's few batch items per response gain
# nothing from more: the pipelines are CPU work on the reactor thread, and their one wait,
# a full batch's write, holds only the rest of that response while other responses go on.
CONCURRENT_ITEMS = 1
ITEM_PIPELINES = {"bilicrawl.pipelines.store.StorePipeline": 300}
# Personal data: with BILI_PSEUDONYMIZE every user id is stored as a keyed hash (HMAC with
# BILI_PSEUDONYM_KEY, at least 16 characters, the same for crawls to be joined) and names,
# avatars, signatures and birthdays are not stored (bilicrawl/pseudonyms.py).
BILI_PSEUDONYMIZE = False
BILI_PSEUDONYM_KEY = os.environ.get("BILI_PSEUDONYM_KEY", "")
# The store: sqlite:///relative/path.db, sqlite:////absolute/path.db, mongodb://host/db or
# mongodb+srv://... When empty, MONGO_URI if set (database MONGO_DATABASE), else SQLITE_PATH.
BILI_STORE_URI = os.environ.get("BILI_STORE_URI", "")
MONGO_URI = os.environ.get("MONGO_URI", "")
MONGO_DATABASE = os.environ.get("MONGO_DATABASE", "bilicrawl")
MONGO_CLIENT_CLASS = "pymongo.MongoClient"
SQLITE_PATH = os.environ.get("SQLITE_PATH", "data/bilicrawl.db")
# Documents per write (rows of batch items: BILI_STORE_ROWS_BATCH_SIZE).
BILI_STORE_BATCH_SIZE = 500
# Seconds a SQLite write waits for another process's lock before it counts as failed.
SQLITE_BUSY_TIMEOUT = 5.0
# A batch that fails is retried after each of these delays (seconds), the crawl paused
# meanwhile; if it still fails it is appended to <BILI_DEAD_LETTER_DIR>/failed-<collection>
# .jsonl (partial documents, applied as merges: failed-<collection>.partial.jsonl) and the
# crawl closes. `scrapy replay-dead-letters` applies them. Empty dir: beside the SQLite file,
# or "data" with MongoDB; put it on another disk than the store to survive a full disk.
BILI_STORE_RETRY_DELAYS = [0.5, 2.0, 5.0]
BILI_DEAD_LETTER_DIR = ""
# Rows of batch items (danmaku) per write, in either store: a large sorted batch is far
# cheaper per row than small ones (docs/danmaku.md).
BILI_STORE_ROWS_BATCH_SIZE = 50_000
# Buffered documents are written at least this often (seconds), not only per full batch,
# so a killed crawl loses at most this much fetched work.
BILI_STORE_FLUSH_SECONDS = 5.0
# Seconds to find a MongoDB server at start before giving up with the host named.
MONGO_CONNECT_TIMEOUT = 5.0
