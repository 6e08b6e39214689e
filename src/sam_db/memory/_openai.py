"""OpenAIEmbedder: embeddings from the official ``openai`` SDK (any OpenAI-compatible server).

``openai`` is imported when an OpenAIEmbedder is created, never when sam_db is imported. The
SDK's own retries are switched off (``max_retries=0``) and this module retries instead, following
the same server signals as the SDK (``x-should-retry``, ``Retry-After``, ``retry-after-ms``). The
loop stays because the SDK's cannot be configured where users need it: its back-off is fixed
(capped at a few seconds, ``backoff=`` / ``max_wait=`` here), it ignores a ``Retry-After`` above
two minutes, it cannot log which inputs a retry is for, and its final error may quote the API key
(this module raises a redacted EmbeddingError with no chained cause). ``requests`` counts every
attempt, which monitoring and tests read.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigurationError, DimensionMismatchError, EmbeddingError, InvalidInputError
from ._tasks import gather_or_cancel

log = logging.getLogger("sam_db.memory.openai")

_RETRY_STATUS = frozenset({408, 409, 429})
_SECRET = re.compile(r"\b(sk|key)-[A-Za-z0-9_\-*]{4,}", re.I)


def utf8_token_bound(text: str) -> int:
    """An upper bound of a text's token count for byte-level BPE tokenizers: its UTF-8 bytes.

    Every token of OpenAI's tokenizers covers at least one byte, so this never under-counts;
    it over-counts English text, which only makes requests smaller than they could be.
    """
    return len(text.encode("utf-8"))


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms``; ``retry-after``: seconds or date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _should_retry(headers: Any) -> bool | None:
    """The ``x-should-retry`` header as a bool, None when absent or neither true nor false."""
    if headers is None:
        return None
    raw = headers.get("x-should-retry")
    return {"true": True, "false": False}.get(raw.strip().lower()) if raw else None


def _check_settings(counts: dict[str, Any], max_retries: Any, times: dict[str, Any]) -> None:
    """Refuse an ``OpenAIEmbedder`` setting out of range: ``counts`` are positive ints,
    ``times`` finite numbers >= 0."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
    if counts["max_batch"] > 2048:
        raise ConfigurationError("max_batch cannot exceed 2048 (the embeddings API's limit)")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
    for name, f in times.items():
        if not isinstance(f, (int, float)) or not math.isfinite(f) or f < 0:
            raise ConfigurationError(f"{name} must be a finite number >= 0, got {f!r}")


def _api_key(api_key: str | None) -> str:
    """``api_key``, else ``OPENAI_API_KEY``; refused when missing or unusable in a header."""
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ConfigurationError(
            "no OpenAI API key: set OPENAI_API_KEY or pass api_key= "
            "(for a local server that needs none, pass any placeholder)"
        )
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        # Never quoted: HTTP would reject it as a header, echoing it in its error.
        raise ConfigurationError(
            "the OpenAI API key holds a space, a control or a non-ASCII character: "
            "check OPENAI_API_KEY / api_key= (a stray newline from a file?)"
        )
    return key


class OpenAIEmbedder:
    """An :class:`~sam_db.memory.Embedder` calling ``POST /embeddings`` with ``openai.AsyncOpenAI``.

    ``model`` and ``dimensions`` are sent as given (``dimensions`` only to models that accept it:
    ``text-embedding-3*``, or any model with ``send_dimensions=True``). ``base_url`` points at
    Azure, Ollama, vLLM, LiteLLM...; the key comes from ``api_key`` or ``OPENAI_API_KEY`` and is
    never logged or shown in ``repr``. Pass ``client=`` to use an ``AsyncOpenAI`` you configured
    (its SDK retries are turned off on the copy this embedder uses).

    Inputs are sent in requests of at most ``max_batch`` texts and ``max_tokens_per_request``
    estimated tokens, ``max_concurrency`` requests at a time. Tokens are estimated by
    ``token_counter`` (e.g. a tiktoken encoder's ``lambda t: len(enc.encode(t))``) or, without
    one, by the UTF-8 byte count, an upper bound. Inputs over ``max_input_tokens`` are rejected
    with InvalidInputError when counted exactly; with the byte bound they are sent alone and a
    server refusal becomes an EmbeddingError naming the input. Empty strings are rejected.
    429, 5xx, 408/409, timeouts and connection errors are retried up to ``max_retries`` times
    with exponential back-off (``backoff`` seconds doubling, jittered, capped at ``max_wait``),
    waiting what ``Retry-After`` / ``retry-after-ms`` says when the server sends it; an
    ``x-should-retry: true|false`` header overrides the status rules either way.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        *,
        client: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        max_batch: int = 2048,
        max_tokens_per_request: int = 300_000,
        max_input_tokens: int = 8191,
        max_concurrency: int = 4,
        max_retries: int = 6,
        timeout: float = 60.0,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        token_counter: Callable[[str], int] | None = None,
        send_dimensions: bool | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError("model must be a non-empty string")
        counts = {"dimensions": dimensions, "max_batch": max_batch}
        counts |= {"max_tokens_per_request": max_tokens_per_request}
        counts |= {"max_input_tokens": max_input_tokens, "max_concurrency": max_concurrency}
        times = {"timeout": timeout, "backoff": backoff, "max_wait": max_wait}
        _check_settings(counts, max_retries, times)
        self.model = model
        self.dimensions = dimensions
        self.max_batch = max_batch
        self.max_tokens_per_request = max_tokens_per_request
        self.max_input_tokens = max_input_tokens
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)
        self._count = token_counter or utf8_token_bound
        self._exact_count = token_counter is not None
        self._send_dimensions = (
            model.startswith("text-embedding-3") if send_dimensions is None else send_dimensions
        )
        try:
            import openai
        except ImportError:
            raise ConfigurationError(
                "OpenAIEmbedder needs the openai package: pip install 'sam-db[openai]'"
            ) from None
        self._openai = openai
        if client is not None:
            if base_url is not None or api_key is not None:
                raise ConfigurationError("pass client=, or base_url=/api_key=, not both")
            self._client = client.with_options(max_retries=0)
        else:
            key = _api_key(api_key)
            self._client = openai.AsyncOpenAI(
                api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout
            )
        self._secret = None if client is not None else key
        self.requests = 0  # requests sent, retries included (for tests and monitoring)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.model!r}, dimensions={self.dimensions})"

    def _redact(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return _SECRET.sub(lambda m: m.group(1) + "-***", text)

    def plan_batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Split input indexes into requests within ``max_batch`` and the token budget."""
        batches: list[list[int]] = []
        current: list[int] = []
        budget = 0
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInputError(f"input {i} is {type(text).__name__}, not str")
            if not text:
                raise InvalidInputError(f"input {i} is an empty string: the API rejects it")
            tokens = self._count(text)
            if tokens > self.max_input_tokens:
                if self._exact_count:
                    raise InvalidInputError(
                        f"input {i} has {tokens} tokens, over {self.model}'s limit of "
                        f"{self.max_input_tokens}: split it before embedding"
                    )
                # The byte bound is not exact: send it alone and let the server decide.
                batches.append([i])
                continue
            if current and (
                len(current) >= self.max_batch or budget + tokens > self.max_tokens_per_request
            ):
                batches.append(current)
                current, budget = [], 0
            current.append(i)
            budget += tokens
        if current:
            batches.append(current)
        return batches

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` (one vector per text, in order), batching and retrying as configured."""
        if isinstance(texts, str):
            raise InvalidInputError("embed takes a list of texts, not one str")
        texts = list(texts)
        batches = self.plan_batches(texts)
        out: list[list[float]] = [[] for _ in texts]
        gate = asyncio.Semaphore(self.max_concurrency)

        async def run(idx: list[int]) -> None:
            async with gate:
                vectors = await self._request([texts[i] for i in idx], idx)
            for i, v in zip(idx, vectors, strict=True):
                out[i] = v

        await gather_or_cancel(run(b) for b in batches)
        return out

    def _retryable(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError)):
            return True
        if isinstance(exc, o.APIStatusError):
            # The server's own word wins over the status rules, as in the SDK: e.g. a 429 for
            # an exhausted quota says false, a transient 400 from a proxy may say true.
            should = _should_retry(getattr(exc.response, "headers", None))
            if should is not None:
                return should
            return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
        return False

    def _wait(self, exc: BaseException, attempt: int) -> float:
        response = getattr(exc, "response", None)
        asked = _retry_after(getattr(response, "headers", None))
        if asked is not None:
            return float(min(asked, self.max_wait))
        return min(self.backoff * (2.0**attempt) * random.uniform(0.5, 1.0), self.max_wait)

    def _vectors(self, response: Any, count: int) -> list[list[float]]:
        """The vectors of a response in input order; EmbeddingError if it is not an embeddings
        list (a proxy or a server that answers 200 with something else)."""
        failure = None
        try:
            data = sorted(response.data, key=lambda d: d.index)
            vectors = [list(d.embedding) for d in data]
        except (AttributeError, TypeError, ValueError) as exc:
            # Raised outside the except block: no __context__ (see _request).
            failure = EmbeddingError(
                "the embeddings API returned a malformed response "
                f"({type(exc).__name__}: {self._redact(str(exc))}): is base_url an "
                "OpenAI-compatible embeddings endpoint?"
            )
        if failure is not None:
            raise failure
        if len(vectors) != count:
            raise EmbeddingError(
                f"the embeddings API returned {len(vectors)} vectors for {count} inputs"
            )
        return vectors

    async def _request(self, batch: list[str], idx: list[int]) -> list[list[float]]:
        o = self._openai
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self._send_dimensions else {}
        where = f"inputs {idx[0]}..{idx[-1]}" if len(idx) > 1 else f"input {idx[0]}"
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                response = await self._client.embeddings.create(
                    input=batch, model=self.model, encoding_format="float", **extra
                )
                break
            except o.APIError as exc:
                if self._retryable(exc) and attempt < self.max_retries:
                    delay = self._wait(exc, attempt)
                    log.warning(
                        "embedding request for %s failed (%s); retry %d/%d in %.2fs",
                        where,
                        type(exc).__name__,
                        attempt + 1,
                        self.max_retries,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                status = getattr(exc, "status_code", None)
                tried = f" after {attempt + 1} attempts" if self._retryable(exc) else ""
                failure = EmbeddingError(
                    f"embedding {where} with {self.model} failed{tried}: "
                    f"{type(exc).__name__}"
                    + (f" (HTTP {status})" if status else "")
                    + f": {self._redact(str(exc))}"
                )
            # Raised outside the except block, so that no __context__ keeps the SDK's error
            # (which may quote the API key).
            raise failure
        vectors = self._vectors(response, len(batch))
        for i, v in zip(idx, vectors, strict=True):
            if len(v) != self.dimensions:
                raise DimensionMismatchError(
                    f"{self.model} returned a {len(v)}-dimensional vector for input {i}; "
                    f"the embedder is configured for {self.dimensions}",
                    expected=self.dimensions,
                    actual=len(v),
                )
        return vectors
