"""Fault injection, network: a loopback server on 127.0.0.1 that drips its answer a byte at a
time (slowloris, in the body or in the headers), never answers, sends a gzip bomb or a huge
announced size, redirects to file:// or in a loop; and an Overpass answer with a junk
element. Each ends in a clear error within the configured deadlines, nothing invalid is
cached, and a run's earlier outputs stay as they were."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import pipeline.overpass
from pipeline.cli import main
from pipeline.http import HttpClient, HttpRequest, HttpSettings, _redirect_target
from pipeline.kernel.errors import FetchError, OsmDataError
from tests.faults import children_of, grenoble_profile, visible_digests
from tests.loopback import Loopback, Reply, overpass_server

# Short limits, so that each fault shows in a second instead of the real minutes.
QUICK = HttpSettings(timeout=0.5, deadline=1.5, retries=1, backoff=0.01, max_wait=0.05,
                     max_bytes=4_000_000, max_decoded_bytes=1_000_000, max_redirects=3)
PATH = "/data"


@pytest.fixture
def server() -> Any:
    with Loopback() as loopback:
        yield loopback


def _get(server: Loopback, tmp_path: Path, settings: HttpSettings = QUICK) -> Any:
    with HttpClient(tmp_path / "cache", "faults", settings, sleep=lambda s: None) as http:
        return http.fetch(HttpRequest("GET", server.url(PATH)))


def _cached(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_slowloris_ends_at_the_deadline(server: Loopback, tmp_path: Path,
                                        headers_too: bool) -> None:
    """One byte every 0.1 s never trips the 0.5 s read timeout; the 1.5 s deadline ends it."""
    server.script(PATH, [Reply(body=b"x" * 2000, drip=0.1, drip_headers=headers_too)])
    started = time.monotonic()
    # The cut shows as the deadline, or (headers cut mid-line on a loaded machine) as the
    # connection it ended; either way two attempts, each ended at its deadline.
    with pytest.raises(FetchError, match=r"failed after 2 attempts.*(within the deadline of 1\.5 s|"
                                         r"still arriving at the deadline|connection failed)"):
        _get(server, tmp_path)
    assert time.monotonic() - started < 2 * 1.5 + 2  # two attempts, not 2000 × 0.1 s each
    assert not _cached(tmp_path)


def test_no_answer_ends_with_the_run_deadline(server: Loopback, tmp_path: Path) -> None:
    """A server that never answers: each attempt ends at the read timeout, and the run's own
    deadline ends the retries (not 20 attempts of it)."""
    server.script(PATH, [Reply(delay=30)])
    settings = HttpSettings(timeout=0.3, deadline=5, retries=20, backoff=0.2, max_wait=0.2,
                            ends_at=time.monotonic() + 1.5)
    started = time.monotonic()
    with HttpClient(tmp_path / "cache", "faults", settings) as http, \
            pytest.raises(FetchError, match="the run's time for network requests is up"):
        http.fetch(HttpRequest("GET", server.url(PATH)))
    assert time.monotonic() - started < 3
    assert server.count(PATH) < 6


def test_a_gzip_bomb_is_stopped_once_decompressed_past_the_cap(server: Loopback,
                                                              tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * 30_000_000, 9)  # 30 MB that travel as ~30 kB
    assert len(bomb) < QUICK.max_bytes
    server.script(PATH, [Reply(body=bomb, headers={"Content-Encoding": "gzip"})])
    with pytest.raises(FetchError, match=r"larger than the limit .* 1000000 bytes decompressed "
                                         r"\(a compression bomb\?\)"):
        _get(server, tmp_path)
    assert not _cached(tmp_path)


def test_an_answer_announcing_too_many_bytes_is_not_downloaded(server: Loopback,
                                                               tmp_path: Path) -> None:
    server.script(PATH, [Reply(body=b"y" * 5_000_000)])
    with pytest.raises(FetchError, match="announces 5000000 bytes, more than the limit of "
                                         "4000000 bytes; it was not downloaded"):
        _get(server, tmp_path)


@pytest.mark.parametrize(("location", "message"), [
    ("file:///etc/passwd", r"redirects to 'file:///etc/passwd'; only redirects to http or https"),
    (PATH, r"redirect loop \(http://127\.0\.0\.1:\d+/data -> http://127\.0\.0\.1:\d+/data\)"),
    ("/next", r"more than 3 redirects or a redirect loop"),
], ids=["file-scheme", "loop", "too-many"])
def test_redirects_are_followed_only_where_they_may_go(server: Loopback, tmp_path: Path,
                                                       location: str, message: str) -> None:
    server.script(PATH, [Reply(302, headers={"Location": location})])
    server.script("/next", [Reply(302, headers={"Location": "/next2"})])
    server.script("/next2", [Reply(302, headers={"Location": "/next3"})])
    server.script("/next3", [Reply(302, headers={"Location": "/next4"})])
    with pytest.raises(FetchError, match=message):
        _get(server, tmp_path)
    assert server.count() <= 4
    assert not _cached(tmp_path)


def test_a_redirect_within_the_limits_is_followed(server: Loopback, tmp_path: Path) -> None:
    server.script(PATH, [Reply(301, headers={"Location": "/moved"})])
    server.script("/moved", [Reply(body=b'{"ok": true}')])
    response = _get(server, tmp_path)
    assert response.body == b'{"ok": true}' and response.url.endswith("/moved")


def test_no_redirect_from_https_down_to_http() -> None:
    with pytest.raises(FetchError, match="never from https to http"):
        _redirect_target(["https://example.org/a"], "http://example.org/b", 5, "GET x")


def test_a_junk_overpass_element_is_an_error_and_never_cached(tmp_path: Path,
                                                               data: Path) -> None:
    """Before: the junk answer was cached and every later offline run crashed on it."""
    answer = json.loads((data / "grenoble-horodateurs/INPUT/osm-raw-data.json").read_bytes())
    junk = {**answer, "elements": [*answer["elements"], {"type": "node", "id": "x"}]}
    with overpass_server() as server:
        server.script("/api/interpreter", [Reply(body=json.dumps(junk))])
        client = pipeline.overpass.OverpassClient(
            HttpClient(tmp_path / "cache", "faults", QUICK), server.url("/api/interpreter"))
        with pytest.raises(OsmDataError, match=r"element \d+ \(node/'x'\): 'id' is 'x'; expected "
                                               "an integer"):
            client.run("[out:json];node(1);out meta;")
        assert not _cached(tmp_path)
        server.script("/api/interpreter", [Reply(body=json.dumps(answer))])
        assert client.run("[out:json];node(1);out meta;").payload["elements"]


def test_a_run_against_a_dripping_overpass_fails_clearly_and_keeps_its_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = grenoble_profile(tmp_path)
    out = tmp_path / "out"
    assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
    run_dir = out / "grenoble-parking-meters"
    before = visible_digests(run_dir)
    monkeypatch.setattr(pipeline.overpass, "DEFAULT_SETTINGS", QUICK)
    with overpass_server() as server:
        server.script("/api/interpreter", [Reply(body=b"{" * 3000, drip=0.05)])
        live = grenoble_profile(tmp_path, **{  # Overpass [timeout:1]: each attempt 1 + 0.5 s
            "  file: ": f"  overpass_url: {server.url('/api/interpreter')}\n  timeout: 1\n"
                        "  # was: "})
        code = main(["-q", "run", str(live), "--out", str(out)])
    assert code == 4
    err = capsys.readouterr().err
    assert "POST http://127.0.0.1:" in err and "deadline" in err
    assert visible_digests(run_dir) == before
    assert not children_of(os.getpid())
