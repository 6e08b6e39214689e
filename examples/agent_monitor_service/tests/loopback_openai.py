"""An OpenAI-compatible ``POST /v1/embeddings`` on 127.0.0.1, so no test calls OpenAI.

It answers with sam_db's HashEmbedder vectors (deterministic, not semantic), in the format the
real API uses (float lists, or base64 float32 when the client asks for it, as the SDK does), and
counts the texts it embedded.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sam_db.testing import HashEmbedder


class LoopbackOpenAI:
    """The server; ``base_url`` is what ``OPENAI_BASE_URL`` should be."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> LoopbackOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
                loopback.texts.extend(texts)
                embedder = HashEmbedder(body.get("dimensions") or 1536)
                data = []
                for i, text in enumerate(texts):
                    vector: Any = embedder.vector(text)
                    if body.get("encoding_format") == "base64":
                        packed = struct.pack(f"<{len(vector)}f", *vector)
                        vector = base64.b64encode(packed).decode()
                    data.append({"object": "embedding", "index": i, "embedding": vector})
                tokens = sum(len(t) // 4 + 1 for t in texts)
                answer = {
                    "object": "list",
                    "data": data,
                    "model": body.get("model", ""),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler
