"""HTTP GET for the providers: short timeouts, few retries, one time budget.

The client is curl_cffi. Since May 2025 Yahoo answers HTTP 429 to any client whose TLS
handshake is not a browser's, whatever headers it sends (yfinance issue 2422); curl_cffi's
Chrome impersonation (TLS, HTTP/2 and headers, as yfinance now uses) is what it answers.
FRED and mindicador get the same client with an honest User-Agent.
"""

import html
import re
import time
from contextlib import suppress

from curl_cffi import requests
from curl_cffi.requests.exceptions import RequestException, Timeout

from ... import __version__
from ...errors import FxError

ATTEMPTS = 3  # the first try and two retries
BACKOFF_S = 0.5  # wait 0.5 s, then 1 s, between attempts
IMPERSONATE = {"yahoo": "chrome"}  # curl_cffi sets that browser's User-Agent and headers too
HEADERS = {"User-Agent": f"fxforecast/{__version__}", "Accept": "application/json, text/csv"}


class SourceError(FxError):
    """A source's answer is unusable (malformed, empty, implausible): it is rejected."""


class FetchFailed(SourceError):
    """A source gave no usable answer (refused, timed out, HTTP error) after every attempt.

    `status` and `body` are the last HTTP answer's, if any: a provider reads its reason there."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.body = body


def _words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def page_text(body: bytes) -> str | None:
    """What an HTML page says, on one line: its title and first words beyond it."""
    text = body.decode("utf-8", "replace")
    if not text.lstrip().startswith("<"):
        return None
    said = ""
    for tag in ("title", "h1", "p", "pre"):
        found = re.search(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", text, re.IGNORECASE | re.DOTALL)
        words = _words(found.group(1)) if found else ""
        if words and words not in said:
            said = f"{said}: {words}" if said else words
    return said[:160] or _words(text)[:80] or "an empty page"


class Http:
    """One refresh's HTTP client, one session per source (each source is asked by one thread).

    A source that failed every attempt (no answer, server error) is marked down and its
    remaining requests are skipped, so a refresh with every host down ends in about
    sources x attempts x timeout seconds. A source that refuses (HTTP 429) is asked once more
    after a short wait; its other requests are still tried, once each. No request starts
    after the budget is used up, and none runs past it.
    """

    def __init__(self, timeout_s: float, budget_s: float):
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + budget_s
        self.down: set[str] = set()
        self.refusing: set[str] = set()
        self.sessions: dict[str, requests.Session] = {}

    def _session(self, source: str) -> requests.Session:
        if source not in self.sessions:
            impersonate = IMPERSONATE.get(source)
            self.sessions[source] = requests.Session(
                impersonate=impersonate, headers=None if impersonate else HEADERS
            )
        return self.sessions[source]

    def stop(self) -> None:
        """No request starts from now on (the run is stopping); those in flight end by their
        timeout."""
        self.deadline = time.monotonic()

    def close(self) -> None:
        for session in self.sessions.values():
            with suppress(Exception):  # closing is best effort: the answers are already read
                session.close()

    def get(self, source: str, url: str, params: dict | None = None) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise FetchFailed(f"{url!r} is not an http(s) URL; fix {source.upper()}_URL")
        if source in self.down:
            raise FetchFailed(f"skipped {url}: {source} failed earlier in this refresh")
        retries = 0 if source in self.refusing else ATTEMPTS - 1
        attempt = 0
        while True:
            attempt += 1
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed(f"skipped {url}: the refresh time budget is used up")
            status, body = None, b""
            try:
                # A number is curl's limit on the whole request: connecting and reading.
                response = self._session(source).get(
                    url, params=params, timeout=min(self.timeout_s, remaining)
                )
            except Timeout:
                problem = "no answer (timed out)"
            except RequestException as exc:
                problem = f"no answer ({type(exc).__name__})"
            else:
                status, body = response.status_code, response.content
                if status == 200:
                    return body
                problem = f"HTTP {status}"
            if status == 429:
                problem = "refused by the source (HTTP 429 Too Many Requests)"
                retries = min(retries, 1)  # one short retry, not the whole backoff series
                if not retries:
                    self.refusing.add(source)
            elif status is not None and status < 500:
                retries = 0  # a client error will not go away by asking again
            elif not retries:
                self.down.add(source)  # no answer, or a server error, every time
            if not retries:
                raise FetchFailed(f"{url}: {problem} after {attempt} attempt(s)", status, body)
            retries -= 1
            pause = BACKOFF_S * 2 ** (attempt - 1)
            time.sleep(max(0.0, min(pause, self.deadline - time.monotonic())))
