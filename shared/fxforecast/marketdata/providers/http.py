"""HTTP GET for the providers: short timeouts, a few retries with backoff, one time budget."""

import time

import requests

from ... import __version__
from ...errors import FxError

ATTEMPTS = 3  # the first try and two retries
BACKOFF_S = 0.5  # wait 0.5 s, then 1 s, between attempts
# Yahoo answers 403/429 to clients that send no user agent.
HEADERS = {"User-Agent": f"fxforecast/{__version__}", "Accept": "application/json, text/csv"}


class SourceError(FxError):
    """A source's answer is unusable (malformed, empty, implausible): it is rejected."""


class FetchFailed(SourceError):
    """A source gave no answer (refused, timed out, HTTP error) after every attempt."""


class Http:
    """One refresh's HTTP client.

    A source that failed every attempt (refused, timed out, server error) is marked down and
    its remaining requests are skipped, so a refresh with every host down ends in about
    sources x attempts x timeout seconds. No request starts after the budget is used up.
    """

    def __init__(self, timeout_s: float, budget_s: float):
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + budget_s
        self.down: set[str] = set()

    def get(self, source: str, url: str, params: dict | None = None) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise FetchFailed(f"{url!r} is not an http(s) URL; fix {source.upper()}_URL")
        if source in self.down:
            raise FetchFailed(f"skipped {url}: {source} failed earlier in this refresh")
        for attempt in range(ATTEMPTS):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed(f"skipped {url}: the refresh time budget is used up")
            try:
                response = requests.get(
                    url, params=params, headers=HEADERS, timeout=min(self.timeout_s, remaining)
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"no answer ({type(exc).__name__})"
            except requests.RequestException as exc:
                problem = f"broken answer ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return response.content
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # a client error will not go away by asking again
            if attempt + 1 < ATTEMPTS:
                time.sleep(max(0.0, min(BACKOFF_S * 2**attempt, self.deadline - time.monotonic())))
        else:  # every attempt failed without a client error: the host is down for now
            self.down.add(source)
        raise FetchFailed(f"{url}: {problem} after {attempt + 1} attempt(s)")
