"""A threaded HTTP server on 127.0.0.1 that replays scripted answers and faults, for client tests.

Each path gets a list of `Reply`s served in order (the last one repeats). A reply can be a normal
answer, an HTTP error, a hang past the client's timeout, a truncated body, a dropped
connection, or an answer sent a byte at a time (slowloris: the body, or the headers too).
Every request is recorded, so tests can count what reached the server.

    with Loopback() as server:
        server.script("/api/interpreter", [Reply(429), Reply(body=answer)])
        url = server.url("/api/interpreter")
"""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hang past the timeout)
    truncate_at: int | None = None  # send only this many bytes, then close the connection
    honest_length: bool = True  # with truncate_at: False announces the full Content-Length
    drop: bool = False  # close the connection without answering
    respond: Callable[[bytes], bytes | str] | None = None  # the body, from the request's body
    drip: float = 0.0  # seconds between bytes of the body (a server that never quite stops)
    drip_headers: bool = False  # with drip: the status line and headers a byte at a time too

    @property
    def data(self) -> bytes:
        return self.data_for(b"")

    def data_for(self, request: bytes) -> bytes:
        body = self.respond(request) if self.respond is not None else self.body
        return body.encode("utf-8") if isinstance(body, str) else body


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # without the query string
    query: str
    body: bytes
    headers: dict[str, str]


class Loopback:
    """The server; use as a context manager. `requests` lists every request received."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[Reply]] = {}
        self._served: dict[str, int] = defaultdict(int)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, replies: list[Reply]) -> None:
        with self._lock:
            self._scripts[path] = list(replies)
            self._served[path] = 0

    def count(self, path: str | None = None) -> int:
        """Requests received, for one path or in all."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def _next(self, path: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(path)
            if not replies:
                return Reply(404, f"no script for {path}", "text/plain")
            index = min(self._served[path], len(replies) - 1)
            self._served[path] += 1
            return replies[index]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet tests
                return

            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                loopback._record(Seen(self.command, parts.path, parts.query, body,
                                      dict(self.headers.items())))
                reply = loopback._next(parts.path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.drip:
                    self._drip(reply)
                    return
                data = reply.data_for(body)
                sent = data if reply.truncate_at is None else data[: reply.truncate_at]
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.truncate_at is None or not reply.honest_length:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Content-Length", str(len(sent)))
                if reply.truncate_at is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    self.wfile.write(sent)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _drip(self, reply: Reply) -> None:
                head = (f"HTTP/1.1 {reply.status} OK\r\nContent-Type: {reply.content_type}\r\n"
                        + "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                        + f"Content-Length: {len(reply.data)}\r\n\r\n").encode("latin-1")
                self.close_connection = True
                try:
                    if not reply.drip_headers:
                        self.wfile.write(head)
                        head = b""
                    for i in range(len(head) + len(reply.data)):
                        self.wfile.write((head + reply.data)[i:i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                except OSError:  # the client gave up and closed: what a deadline is for
                    pass

        return Handler


def refused_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@contextmanager
def overpass_server() -> Iterator[Loopback]:
    """A loopback Overpass server whose /api/status always has a free slot."""
    with Loopback() as loopback:
        loopback.script("/api/status", [Reply(200, "Rate limit: 2\n2 slots available now.\n",
                                              "text/plain")])
        yield loopback


def overpass_replay(answer: bytes | str, land: tuple[float, float, float, float],
                    nodes: int = 25) -> Reply:
    """An Overpass server's replies: `out count` queries (where OSM holds data) answered with
    `nodes` nodes in each box that meets `land` ([west, south, east, north]) and 0 elsewhere;
    any other query with the nodes of `answer` (a recorded answer) inside its bbox, as a server
    holding that data would."""
    import json
    import re
    from urllib.parse import parse_qs

    west, south, east, north = land

    def respond(request: bytes) -> bytes | str:
        query = parse_qs(request.decode("utf-8")).get("data", [""])[0]
        if "out count" not in query:
            return _inside_bbox(answer, query)
        counts = []
        for box in re.findall(r"node\(([^)]*)\);out count;", query):
            s, w, n, e = (float(v) for v in box.split(","))
            inside = w <= east and e >= west and s <= north and n >= south
            total = nodes if inside else 0
            counts.append({"type": "count", "id": 0, "tags": {
                "nodes": str(total), "ways": "0", "relations": "0", "total": str(total)}})
        return json.dumps({"version": 0.6, "generator": "Overpass API loopback",
                           "osm3s": {"timestamp_osm_base": "2024-05-01T10:00:00Z"},
                           "elements": counts})

    return Reply(respond=respond)


def _inside_bbox(answer: bytes | str, query: str) -> str:
    """The recorded answer with only the nodes inside the query's (first) bbox."""
    import json
    import re

    payload = json.loads(answer)
    box = re.search(r"\((-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)\)", query)
    if box is not None:
        s, w, n, e = (float(v) for v in box.groups())
        payload["elements"] = [el for el in payload["elements"] if el.get("type") != "node"
                               or (s <= el["lat"] <= n and w <= el["lon"] <= e)]
    return json.dumps(payload)
