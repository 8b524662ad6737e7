"""The store documents are written to and read from, chosen by ``BILI_STORE_URI``.

The URI's scheme picks the backend from :data:`STORE_SCHEMES`, as Scrapy's
``FilesPipeline`` picks its store: ``sqlite:///data/bilicrawl.db`` (four
slashes for an absolute path) or ``mongodb://host/db`` (``mongodb+srv://`` too).
When it is empty, ``MONGO_URI`` if set, else ``SQLITE_PATH``: the older
settings, kept as aliases. The storage pipeline writes through the store;
resume, ``replay-dead-letters`` and any other reader read through it.

Settings: ``BILI_STORE_URI``, ``MONGO_URI``, ``MONGO_DATABASE``,
``MONGO_CLIENT_CLASS``, ``MONGO_CONNECT_TIMEOUT``, ``SQLITE_PATH``, ``SQLITE_BUSY_TIMEOUT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

from bilicrawl.config import ConfigError
from bilicrawl.store.base import Store, Where

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["STORE_SCHEMES", "Store", "Where", "store_from_settings", "store_location"]

STORE_SCHEMES: dict[str, str] = {
    "sqlite": "bilicrawl.store.sqlite.SQLiteStore",
    "mongodb": "bilicrawl.store.mongo.MongoStore",
    "mongodb+srv": "bilicrawl.store.mongo.MongoStore",
}
"""The store class of each URI scheme (loaded only when used: pymongo costs 0.1 s)."""


def store_location(settings: BaseSettings) -> tuple[str, str, str]:
    """Return the setting that names the store, its scheme, and the location it gives."""
    if uri := str(settings.get("BILI_STORE_URI") or ""):
        scheme, separator, rest = uri.partition("://")
        if not separator or scheme not in STORE_SCHEMES:
            schemes = ", ".join(f"{name}://" for name in STORE_SCHEMES)
            raise ConfigError(f"BILI_STORE_URI {uri!r} must start with one of {schemes}")
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise ConfigError(
                    f"BILI_STORE_URI {uri!r}: write sqlite:///relative/path.db or"
                    " sqlite:////absolute/path.db"
                )
            return "BILI_STORE_URI", scheme, rest[1:]
        return "BILI_STORE_URI", scheme, uri
    if uri := str(settings.get("MONGO_URI") or ""):
        return "MONGO_URI", uri.partition("://")[0] if "://" in uri else "mongodb", uri
    if path := str(settings.get("SQLITE_PATH") or ""):
        return "SQLITE_PATH", "sqlite", path
    raise ConfigError("No store: set BILI_STORE_URI (or SQLITE_PATH, or MONGO_URI)")


def store_from_settings(settings: BaseSettings) -> Store:
    """Return the store the settings name, not yet open; ConfigError if it cannot be one."""
    setting, scheme, location = store_location(settings)
    store_class: type[Store] = load_object(STORE_SCHEMES.get(scheme, STORE_SCHEMES["mongodb"]))
    return store_class.from_settings(setting, location, settings)
