"""Fetching documents from elsewhere against a real HTTP server on loopback: the
body of a 200, and a FetchFailed that names the kind of failure (never the URL)
for everything else — a status, a redirect (never followed), a document past its
size, a server that is slow as a whole however it drips its bytes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paradarum import fetching
from paradarum.fetching import FetchFailed, LoopLock, fetch_document

MAX = 4096


class Origin:
    """A threaded HTTP/1.1 server on 127.0.0.1; each path is answered by a function of
    the handler. It records the requests it gets; ``stop`` ends any answer that waits."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.requests.append((self.path, dict(self.headers.items())))
                route = origin.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    server.thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.server.shutdown()
        server.server.server_close()


def answer(status: int, body: bytes, **headers: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def chunked(chunks: Iterator[bytes], stop: threading.Event, every: float = 0.0):
    """A chunked answer (no Content-Length), one chunk every ``every`` seconds until
    ``chunks`` runs out or the test is over."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for chunk in chunks:
                if stop.wait(every):
                    return
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up: what a bounded fetch does
            handler.close_connection = True

    return respond


def fetch(url: str, *, timeout: float = 5.0, max_bytes: int = MAX, **kwargs: str) -> bytes:
    return asyncio.run(fetch_document(url, timeout=timeout, max_bytes=max_bytes, **kwargs))


def refused(url: str, **kwargs: float) -> str:
    """The failure's message, which must never repeat the URL."""
    with pytest.raises(FetchFailed) as failed:
        fetch(url, **kwargs)  # type: ignore[arg-type]
    message = str(failed.value)
    assert "127.0.0.1" not in message and "http" not in message, message
    return message


def test_a_200_gives_its_body_and_asks_for_json_unless_told_otherwise(origin):
    document = b'{"keys": []}'
    origin.routes["/keys"] = answer(200, document, Content_Type="application/json")
    assert fetch(origin.url + "/keys") == document
    assert fetch(origin.url + "/keys", accept="application/jwk-set+json") == document
    accepts = [headers["Accept"] for _, headers in origin.requests]
    assert accepts == ["application/json", "application/jwk-set+json"]


def test_a_document_of_exactly_max_bytes_is_taken_one_more_is_refused(origin):
    origin.routes["/exact"] = answer(200, b"a" * MAX)
    origin.routes["/over"] = answer(200, b"a" * (MAX + 1))
    assert fetch(origin.url + "/exact") == b"a" * MAX
    assert refused(origin.url + "/over") == "document too large"


def test_an_endless_document_is_cut_off_past_max_bytes_without_reading_it_all(origin):
    def endless() -> Iterator[bytes]:
        while True:
            yield b"b" * 1024

    origin.routes["/endless"] = chunked(endless(), origin.stop)
    started = time.monotonic()
    assert refused(origin.url + "/endless", timeout=10) == "document too large"
    assert time.monotonic() - started < 5  # the size, not the deadline, ended it
    assert len(origin.requests) == 1


@pytest.mark.parametrize("status", [201, 204, 304, 404, 429, 500, 503])
def test_any_status_but_200_is_a_failure_that_names_it(origin, status):
    origin.routes["/doc"] = answer(status, b"" if status in (204, 304) else b"{}")
    assert refused(origin.url + "/doc") == f"status {status}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(origin, status):
    origin.routes["/moved"] = answer(status, b"", Location="/elsewhere")
    origin.routes["/elsewhere"] = answer(200, b'{"keys": []}')
    assert refused(origin.url + "/moved") == f"status {status}"
    assert origin.paths() == ["/moved"]


def test_a_server_that_never_answers_is_given_up_at_the_timeout(origin):
    origin.routes["/silent"] = lambda handler: origin.stop.wait()
    started = time.monotonic()
    assert refused(origin.url + "/silent", timeout=0.5) == "no answer within 0.5 s"
    assert 0.4 < time.monotonic() - started < 3


def test_a_server_that_drips_its_bytes_is_bounded_as_a_whole_not_per_read(origin):
    """Each chunk comes well within the timeout, so a per-read timeout would wait
    for ever (the document never ends); the fetch is given up at the timeout."""

    def drip() -> Iterator[bytes]:
        while True:
            yield b" "

    origin.routes["/drip"] = chunked(drip(), origin.stop, every=0.05)
    started = time.monotonic()
    assert refused(origin.url + "/drip", timeout=0.6, max_bytes=10**6) == "no answer within 0.6 s"
    assert 0.5 < time.monotonic() - started < 3
    assert len(origin.requests) == 1  # one try, no retry


def test_a_document_that_ends_within_the_timeout_is_taken_however_it_was_cut(origin):
    origin.routes["/pieces"] = chunked(iter([b'{"keys"', b": ", b"[]}"]), origin.stop)
    assert fetch(origin.url + "/pieces") == b'{"keys": []}'


def test_a_port_nobody_listens_on_is_a_connection_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        assert refused(f"http://127.0.0.1:{port}/keys") == "ConnectError"


def test_a_connection_closed_before_an_answer_is_a_failure(origin):
    def hang_up(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    origin.routes["/gone"] = hang_up
    assert refused(origin.url + "/gone") == "RemoteProtocolError"


def test_an_address_that_is_not_http_is_a_failure_not_an_exception_of_another_kind():
    assert refused("ftp://127.0.0.1/keys") == "UnsupportedProtocol"


class TestLoopLock:
    def test_the_same_loop_gets_the_same_lock_and_it_excludes(self):
        holder = LoopLock()

        async def main() -> list[str]:
            order: list[str] = []
            assert holder() is holder()

            async def worker(name: str) -> None:
                async with holder():
                    order.append(f"{name} in")
                    await asyncio.sleep(0)
                    order.append(f"{name} out")

            await asyncio.gather(worker("a"), worker("b"))
            return order

        assert asyncio.run(main()) == ["a in", "a out", "b in", "b out"]

    def test_another_loop_gets_a_lock_of_its_own_that_works_there(self):
        holder = LoopLock()

        async def take() -> asyncio.Lock:
            lock = holder()
            async with lock:
                # Waiting on the lock ties it to this loop.
                waiter = asyncio.ensure_future(lock.acquire())
                await asyncio.sleep(0)
                assert not waiter.done()
            await waiter
            lock.release()
            return lock

        first = asyncio.run(take())
        second = asyncio.run(take())  # an asyncio.Lock shared across loops would fail here
        assert first is not second


def test_a_fetched_document_is_json_or_a_value_error_however_deep_it_nests():
    assert fetching.parse_json(b'{"keys": [1, [2]]}') == {"keys": [1, [2]]}
    with pytest.raises(ValueError, match="nested too deeply"):
        fetching.parse_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError):
        fetching.parse_json(b"{not json")
