"""The one HTTP client of sig2osm: Overpass queries and source downloads both go through it.

`HttpClient` owns a `requests.Session` and gives every request the same habits: a timeout, a
User-Agent naming sig2osm, its version and the profile, retries with exponential backoff on 429,
502-504 and connection errors (honouring `Retry-After`), and an on-disk cache keyed by the request
(method, URL, body), so a re-run does not hit the server. An answer enters the cache only after
the caller's `validate` accepted it: a truncated or erroneous answer is never replayed.
Nothing else in the project imports `requests`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from exports.atomic import write_atomic
from pipeline import __version__
from pipeline.errors import FetchError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
OVERPASS_ADVICE = ("The server may be overloaded: try again later or use another server "
                   "(osm.overpass_url), or a local extract (osm.file).")


@dataclass(frozen=True)
class HttpSettings:
    """How patient the client is. Tests use short values; the defaults suit public servers."""

    timeout: float = 60.0  # seconds to connect and between bytes of the answer
    retries: int = 4  # attempts after the first one
    backoff: float = 2.0  # first wait in seconds, doubled after each failed attempt
    max_wait: float = 120.0  # longest single wait (Retry-After included)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    data: Mapping[str, str] | None = None  # form fields (POST)
    params: Mapping[str, str] | None = None  # query string

    @property
    def cache_key(self) -> str:
        text = json.dumps([self.method.upper(), self.url, dict(self.data or {}),
                           dict(self.params or {})], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.url}"


@dataclass(frozen=True)
class HttpResponse:
    url: str  # the final URL, after redirects
    status: int
    content_type: str  # media type without parameters, lower case ("application/json")
    body: bytes
    from_cache: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class RetryableAnswer(FetchError):
    """Raised by a `validate` callback for an answer worth asking again (e.g. truncated JSON)."""


Validator = Callable[[HttpResponse], None]


def user_agent(profile_name: str | None) -> str:
    """`sig2osm/<version> (+<profile>)`: servers can tell who asks and for which layer."""
    suffix = f" (+{profile_name})" if profile_name else ""
    return f"sig2osm/{__version__}{suffix}"


class HttpClient:
    """One session, one cache folder, the same retry policy for every request."""

    def __init__(self, cache_dir: Path | None, profile_name: str | None = None,
                 settings: HttpSettings | None = None, refresh: bool = False,
                 sleep: Callable[[float], None] = time.sleep, advice: str = OVERPASS_ADVICE
                 ) -> None:
        self.cache_dir = cache_dir
        self.advice = advice  # what to do when a request fails after every retry
        self.settings = settings or HttpSettings()
        self.refresh = refresh
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent(profile_name)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- cache --------------------------------------------------------------------------

    def _cache_paths(self, request: HttpRequest) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        key = request.cache_key
        folder = self.cache_dir / key[:2]
        return folder / f"{key}.body", folder / f"{key}.json"

    def cached(self, request: HttpRequest) -> HttpResponse | None:
        """The stored answer to `request`, or None (always None with `refresh`)."""
        paths = self._cache_paths(request)
        if paths is None or self.refresh:
            return None
        body_path, meta_path = paths
        if not (body_path.is_file() and meta_path.is_file()):
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        body = body_path.read_bytes()
        if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
            log.warning("cache entry %s does not match its digest; asking again", body_path)
            return None
        return HttpResponse(meta["url"], meta["status"], meta["content_type"], body, True,
                            meta.get("headers", {}))

    def _store(self, request: HttpRequest, response: HttpResponse) -> None:
        paths = self._cache_paths(request)
        if paths is None:
            return
        body_path, meta_path = paths
        write_atomic(body_path, response.body)
        meta = {"request": request.label, "params": dict(request.params or {}),
                "url": response.url, "status": response.status,
                "content_type": response.content_type, "sha256": response.sha256,
                "headers": dict(response.headers)}
        write_atomic(meta_path, json.dumps(meta, indent=1, ensure_ascii=False))

    # --- requests -----------------------------------------------------------------------

    def fetch(self, request: HttpRequest, validate: Validator | None = None,
              use_cache: bool = True) -> HttpResponse:
        """The answer to `request`: from the cache, or from the server with retries."""
        if use_cache:
            hit = self.cached(request)
            if hit is not None:
                log.debug("cache hit for %s", request.label)
                return hit
        response = self._send_with_retries(request, validate)
        if use_cache:
            self._store(request, response)
        return response

    def probe(self, request: HttpRequest) -> HttpResponse | None:
        """One attempt, no cache, no retry: None when it fails (for optional endpoints)."""
        try:
            return self._send_once(request)
        except (_Retry, FetchError) as exc:
            log.debug("%s: %s", request.label, exc)
            return None

    def _send_with_retries(self, request: HttpRequest, validate: Validator | None) -> HttpResponse:
        s = self.settings
        wait = s.backoff
        problems: list[str] = []
        for attempt in range(s.retries + 1):
            try:
                response = self._send_once(request)
                if validate is not None:
                    validate(response)
                return response
            except _Retry as exc:
                problems.append(exc.reason)
                pause = min(exc.retry_after if exc.retry_after is not None else wait, s.max_wait)
            except RetryableAnswer as exc:
                problems.append(str(exc))
                pause = min(wait, s.max_wait)
            if attempt < s.retries:
                log.warning("%s: %s; attempt %d of %d, next in %.1f s", request.label,
                            problems[-1], attempt + 1, s.retries + 1, pause)
                self.sleep(pause)
                wait *= 2
        raise FetchError(f"{request.label}: failed after {s.retries + 1} attempts; last problem: "
                         f"{problems[-1]}. {self.advice}")

    def _send_once(self, request: HttpRequest) -> HttpResponse:
        timeout = self.settings.timeout
        try:
            raw = self.session.request(request.method, request.url, data=request.data,
                                       params=request.params, timeout=(timeout, timeout))
            body = raw.content  # reads the whole body; a short read raises here
        except requests.Timeout as exc:
            raise _Retry(f"no answer within {timeout:g} s ({type(exc).__name__})") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retry(f"connection failed ({_short(exc)})") from exc
        content_type = raw.headers.get("Content-Type", "").split(";")[0].strip().lower()
        response = HttpResponse(raw.url, raw.status_code, content_type, body, False,
                                {k: v for k, v in raw.headers.items()
                                 if k.lower() in ("content-type", "content-disposition",
                                                  "last-modified", "etag")})
        if raw.status_code in RETRY_STATUSES:
            raise _Retry(f"HTTP {raw.status_code} {raw.reason}",
                         _retry_after(raw.headers.get("Retry-After")))
        if raw.status_code >= 400:
            raise FetchError(f"{request.label}: HTTP {raw.status_code} {raw.reason}: "
                             f"{excerpt(response)}")
        return response


class _Retry(Exception):
    """A transient failure: the request is sent again after a pause."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def excerpt(response: HttpResponse, limit: int = 300) -> str:
    """The readable part of an error page (Overpass explains syntax errors in HTML)."""
    import re

    text = re.sub(r"<[^>]+>", " ", response.text())
    text = " ".join(text.split())
    return (text[:limit] + "…") if len(text) > limit else (text or "(empty answer)")


def describe(response: HttpResponse) -> dict[str, Any]:
    """What the report says about one answer."""
    return {"url": response.url, "sha256": response.sha256, "size": len(response.body),
            "cache": "hit" if response.from_cache else "miss"}
