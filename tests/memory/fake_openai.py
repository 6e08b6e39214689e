"""A small OpenAI-compatible ``POST /v1/embeddings`` server for tests, on 127.0.0.1.

Vectors are deterministic (HashEmbedder's). Tests script failures ahead of time — HTTP errors with
headers such as ``Retry-After``, or slow responses that trip client timeouts — and read back what
the server saw (batch sizes, models, dimensions). The real ``openai`` SDK talks to it over HTTP.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sam_db.testing import HashEmbedder

MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8191


def fake_tokens(text: str) -> int:
    """The fake server's token count: one token per 4 UTF-8 bytes, rounded up."""
    return (len(text.encode("utf-8")) + 3) // 4


@dataclass
class Seen:
    """One request as the server received it."""

    inputs: list[str]
    model: str
    dimensions: int | None
    encoding_format: str | None
    authorization: str | None
    status: int = 200


@dataclass
class _Action:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""
    delay: float = 0.0


class FakeOpenAI:
    """The server and its script. Use ``fail_next`` / ``delay_next``; read ``requests``."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._script: deque[_Action] = deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def batch_sizes(self) -> list[int]:
        """Input counts of requests that got embeddings back (HTTP 200)."""
        return [len(r.inputs) for r in self.requests if r.status == 200]

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        message: str = "injected failure",
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` (and ``headers``).

        ``should_retry`` sends OpenAI's ``x-should-retry: true|false`` header, the server's own
        word on whether a retry can succeed.
        """
        headers = dict(headers or {})
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        with self._lock:
            for _ in range(times):
                self._script.append(_Action(status=status, headers=headers, message=message))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` requests wait ``seconds`` before answering normally."""
        with self._lock:
            for _ in range(times):
                self._script.append(_Action(delay=seconds))

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: object, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def _error(self, seen: Seen, status: int, message: str, **headers: str) -> None:
                seen.status = status
                self._send(
                    status,
                    {"error": {"message": message, "type": "invalid_request_error", "code": None}},
                    headers,
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                raw = payload.get("input")
                inputs = [raw] if isinstance(raw, str) else list(raw or [])
                seen = Seen(
                    inputs=inputs,
                    model=payload.get("model", ""),
                    dimensions=payload.get("dimensions"),
                    encoding_format=payload.get("encoding_format"),
                    authorization=self.headers.get("Authorization"),
                )
                with fake._lock:
                    fake.requests.append(seen)
                    action = fake._script.popleft() if fake._script else None
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    self._answer(seen, action)
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

            def _answer(self, seen: Seen, action: _Action | None) -> None:
                if self.path.rstrip("/") != "/v1/embeddings":
                    self._error(seen, 404, f"no route {self.path}")
                    return
                if action is not None and action.delay:
                    time.sleep(action.delay)
                elif action is not None and action.status is not None:
                    self._error(seen, action.status, action.message, **action.headers)
                    return
                if len(seen.inputs) > MAX_INPUTS:
                    self._error(seen, 400, f"'input' must have at most {MAX_INPUTS} items")
                    return
                for i, text in enumerate(seen.inputs):
                    if not text:
                        self._error(seen, 400, f"'input'[{i}] is empty")
                        return
                    if fake_tokens(text) > MAX_INPUT_TOKENS:
                        self._error(
                            seen,
                            400,
                            "This model's maximum context length is 8192 tokens, however you "
                            f"requested {fake_tokens(text)} tokens in input {i}.",
                        )
                        return
                embedder = HashEmbedder(seen.dimensions or 1536)
                data = []
                for i, text in enumerate(seen.inputs):
                    vector = embedder.vector(text)
                    if seen.encoding_format == "base64":
                        packed = struct.pack(f"<{len(vector)}f", *vector)
                        value: object = base64.b64encode(packed).decode()
                    else:
                        value = vector
                    data.append({"object": "embedding", "index": i, "embedding": value})
                tokens = sum(fake_tokens(t) for t in seen.inputs)
                # Answer out of order: clients must sort by index.
                data.reverse()
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": seen.model,
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    },
                    {},
                )

        return Handler
