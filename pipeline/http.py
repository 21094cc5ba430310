"""The one HTTP client of sig2osm: Overpass queries and source downloads both go through it.

`HttpClient` owns a `requests.Session` and gives every request the same habits: a timeout, a
User-Agent naming sig2osm, its version and the profile, retries with exponential backoff on 429,
502-504 and connection errors (honouring `Retry-After`), and an on-disk cache keyed by the request
(method, URL, body), so a re-run does not hit the server. An answer enters the cache only after
the caller's `validate` accepted it: a truncated or erroneous answer is never replayed.
Nothing else in the project imports `requests`.

Every request is bounded (`HttpSettings`): a deadline for the whole attempt (connection,
redirects, headers and body: a server that sends one byte a second is cut off at it, by a
watchdog that shuts the connection), a deadline for all the requests of a run, retries and
waits included, a cap on the answer's size as sent and once decompressed, and at most a few
redirects, to http or https only (never from https down to http).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from pipeline.kernel import __version__
from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.errors import FetchError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
OVERPASS_ADVICE = ("The server may be overloaded: try again later or use another server "
                   "(osm.overpass_url), or a local extract (osm.file).")


@dataclass(frozen=True)
class HttpSettings:
    """How patient the client is. Tests use short values; the defaults suit public servers."""

    timeout: float = 60.0  # seconds to connect, and of silence between bytes of the answer
    deadline: float = 900.0  # seconds for one attempt: redirects, headers and the whole body
    retries: int = 4  # attempts after the first one
    backoff: float = 2.0  # first wait in seconds, doubled after each failed attempt
    max_wait: float = 120.0  # longest single wait (Retry-After included)
    max_bytes: int = 2**30  # largest answer as sent (1 GiB)
    max_decoded_bytes: int = 2**30  # largest answer once its Content-Encoding is undone
    max_redirects: int = 5
    ends_at: float | None = None  # time.monotonic() by which the run's requests must be done


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
        self._adapter = _WatchedAdapter()
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", self._adapter)

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
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
            if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
                raise ValueError("the body does not match its digest")
            return HttpResponse(str(meta["url"]), int(meta["status"]), str(meta["content_type"]),
                                body, True, dict(meta.get("headers", {})))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("cache entry %s is damaged (%s); asking again", body_path, exc)
            return None

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
                self._check_run_deadline(request, pause, problems[-1])
                log.warning("%s: %s; attempt %d of %d, next in %.1f s", request.label,
                            problems[-1], attempt + 1, s.retries + 1, pause)
                self.sleep(pause)
                wait *= 2
        raise FetchError(f"{request.label}: failed after {s.retries + 1} attempts; last problem: "
                         f"{problems[-1]}. {self.advice}")

    def _check_run_deadline(self, request: HttpRequest, pause: float, problem: str) -> None:
        ends = self.settings.ends_at
        if ends is not None and time.monotonic() + pause >= ends:
            raise FetchError(f"{request.label}: {problem}; the run's time for network requests "
                             "is up, so it is not asked again. Try again later, or use a local "
                             "file (osm.file, source.path).")

    def _send_once(self, request: HttpRequest) -> HttpResponse:
        s = self.settings
        ends = time.monotonic() + s.deadline
        if s.ends_at is not None:
            ends = min(ends, s.ends_at)
        late = _Retry(f"no complete answer within the deadline of {s.deadline:g} s (or the "
                      "run's)")
        with self._adapter.watching(ends) as watchdog:
            try:
                raw, body = self._exchange(request, ends)
            except FetchError:  # a refused redirect or size: asking again gives the same
                raise
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if watchdog.expired:
                    raise late from exc
                if isinstance(exc, requests.Timeout):
                    raise _Retry(f"no answer within {s.timeout:g} s ({type(exc).__name__})"
                                 ) from exc
                raise _Retry(f"connection failed ({_short(exc)})") from exc
            if watchdog.expired:  # cut while the headers came: what was read is not the answer
                raise late
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

    def _exchange(self, request: HttpRequest, ends: float) -> tuple[requests.Response, bytes]:
        """The answer to `request` after its redirects (followed here, each one checked)."""
        s = self.settings
        method, url, data, params = request.method, request.url, request.data, request.params
        hops = [url]
        while True:
            raw = self.session.request(method, url, data=data, params=params,
                                       timeout=(s.timeout, s.timeout), stream=True,
                                       allow_redirects=False)
            if not raw.is_redirect:
                return raw, _read_capped(raw, s, ends, request.label)
            raw.close()
            url = _redirect_target(hops, raw.headers.get("Location", ""), s.max_redirects,
                                   request.label)
            if raw.status_code == 303 or (raw.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None  # as browsers do
            params = None  # the query string is in the new URL


def _redirect_target(hops: list[str], location: str, limit: int, label: str) -> str:
    """Where a redirect leads, if it may be followed: http or https, no downgrade from https,
    no loop, at most `limit` hops. `hops` (the URLs so far) is extended."""
    target = urljoin(hops[-1], location)
    scheme, previous = urlsplit(target).scheme.lower(), urlsplit(hops[-1]).scheme.lower()
    if scheme not in ("http", "https") or (previous == "https" and scheme == "http"):
        raise FetchError(f"{label}: the server redirects to {target[:200]!r}; only redirects to "
                         "http or https addresses are followed (never from https to http).")
    if target in hops or len(hops) > limit:
        path = " -> ".join(h[:100] for h in [*hops, target])
        raise FetchError(f"{label}: more than {limit} redirects or a redirect loop ({path}); "
                         "give the final address of the data.")
    hops.append(target)
    return target


def _read_capped(raw: requests.Response, s: HttpSettings, ends: float, label: str) -> bytes:
    """The body, decompressed as its Content-Encoding says, within the size caps and the
    attempt's deadline (checked after each piece; a silent server hits the read timeout)."""
    announced = raw.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > s.max_bytes:
        raw.close()
        raise FetchError(f"{label}: the answer announces {int(announced)} bytes, more than the "
                         f"limit of {s.max_bytes} bytes; it was not downloaded.")
    pieces, decoded = [], 0
    for piece in raw.raw.stream(1 << 16, decode_content=True):
        decoded += len(piece)
        if raw.raw.tell() > s.max_bytes or decoded > s.max_decoded_bytes:
            raw.close()
            raise FetchError(f"{label}: the answer is larger than the limit of {s.max_bytes} "
                             f"bytes sent or {s.max_decoded_bytes} bytes decompressed (a "
                             "compression bomb?); it was not kept.")
        if time.monotonic() > ends:
            raw.close()
            raise _Retry(f"the answer was still arriving at the deadline of {s.deadline:g} s "
                         "(or the run's)")
        pieces.append(piece)
    return b"".join(pieces)


class _Watchdog:
    """Shuts down the connections of one attempt at its deadline: a blocked read then ends
    at once, whatever the server is doing (a slowly dripping header included)."""

    def __init__(self, ends: float) -> None:
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, ends - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def stop(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        # The plain socket's shutdown, also for TLS: the reading thread gets an end of file.
        with suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections report to the current attempt's watchdog."""

    def __init__(self) -> None:
        self.watchdog: _Watchdog | None = None
        super().__init__()

    @contextmanager
    def watching(self, ends: float) -> Iterator[_Watchdog]:
        self.watchdog = _Watchdog(ends)
        try:
            yield self.watchdog
        finally:
            self.watchdog.stop()
            self.watchdog = None

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools: dict[str, Any] = dict(urllib3.poolmanager.pool_classes_by_scheme)
        self.poolmanager.pool_classes_by_scheme = {
            scheme: type(f"Watched{pool.__name__}", (pool,),
                         {"ConnectionCls": _watched_connection(pool.ConnectionCls, self)})
            for scheme, pool in pools.items()}

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has pools of its own
            manager.pool_classes_by_scheme = self.poolmanager.pool_classes_by_scheme
        return manager


def _watched_connection(base: Any, adapter: _WatchedAdapter) -> type:
    def connect(self: Any) -> None:
        base.connect(self)
        if adapter.watchdog is not None:
            adapter.watchdog.watch(self)

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if adapter.watchdog is not None:
            adapter.watchdog.watch(self)
        return base.request(self, *args, **kwargs)

    return type(f"Watched{base.__name__}", (base,), {"connect": connect, "request": request})


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

