"""A stand-in for the Hugging Face Hub's HTTP side, for tests: it listens on 127.0.0.1 only, on a random port,
records every request it receives, and stops by itself after `lifetime` seconds should a test forget it.

As it stands it answers every request with 200 and an empty body (enough to be found reachable, directly or as an
HTTP proxy, which receives the absolute URL as its path)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubServer:
    def __init__(self, lifetime: float = 300.0):
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.requests.append((self.command, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> HubServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self._http.shutdown()
        self._http.server_close()
