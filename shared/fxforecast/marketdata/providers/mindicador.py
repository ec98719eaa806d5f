"""mindicador.cl's JSON API: Chile's official indicators (dólar observado, TPM, copper).

GET {base}/api/{code}/{yyyy} answers {"version": .., "autor": "mindicador.cl", "codigo": code,
"nombre": .., "unidad_medida": .., "serie": [{"fecha": "2024-11-29T03:00:00.000Z", "valor":
975.6}, ...]} for that year, newest first; `fecha` is midnight in Santiago written in UTC
(T03:00 in Chilean summer time, T04:00 in winter), so its first ten characters are the day.
A year with nothing published yet has an empty `serie`.
"""

import json
from datetime import date

import pandas as pd

from .http import FetchFailed, Http, SourceError, page_text


def _message(body: bytes) -> str | None:
    """The words of an error answer: a JSON object's message or error, else None."""
    try:
        payload = json.loads(body)
        return str(payload.get("message") or payload.get("error") or "") or None
    except (ValueError, AttributeError):
        return None


def fetch(http: Http, base_url: str, code: str, start: date, now: pd.Timestamp) -> pd.Series:
    days, values = [], []
    years = range(start.year, now.year + 1)
    for year in years:
        try:
            body = http.get("mindicador", f"{base_url}/api/{code}/{year}")
        except FetchFailed as exc:
            message = _message(exc.body) or page_text(exc.body)
            if message is None:
                raise
            raise FetchFailed(
                f"mindicador {code}/{year}: {message} (HTTP {exc.status})", exc.status
            ) from None
        try:
            payload = json.loads(body)
            if payload.get("codigo", code) != code:
                raise SourceError(f"mindicador {code}/{year}: answered for {payload['codigo']!r}")
            if "serie" not in payload:
                raise SourceError(
                    f"mindicador {code}/{year}: no serie in the answer"
                    f" ({_message(body) or 'is the code right?'})"
                )
            for item in payload["serie"]:
                days.append(pd.Timestamp(item["fecha"][:10]))
                values.append(float(item["valor"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"mindicador {code}/{year}: malformed ({exc!r:.80})") from None
    if not values:
        asked = "/".join(str(year) for year in years)
        raise SourceError(
            f"mindicador {code}/{asked}: empty serie (nothing published yet, or an unknown code)"
        )
    series = pd.Series(values, index=pd.DatetimeIndex(days, name="date"), dtype=float)
    series = series[~series.index.duplicated(keep="first")].sort_index()
    return series[series.index >= pd.Timestamp(start)]
