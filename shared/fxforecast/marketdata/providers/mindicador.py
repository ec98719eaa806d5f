"""mindicador.cl's JSON API: Chile's official indicators (dólar observado, TPM, copper).

GET {base}/api/{code}/{yyyy} answers {"codigo": code, "unidad_medida": .., "serie":
[{"fecha": "2024-11-29T03:00:00.000Z", "valor": 975.6}, ...]} for that year, newest first;
`fecha` is midnight in Santiago written in UTC, so its first ten characters are the day.
"""

import json
from datetime import date

import pandas as pd

from .http import Http, SourceError


def fetch(http: Http, base_url: str, code: str, start: date, today: date) -> pd.Series:
    days, values = [], []
    for year in range(start.year, today.year + 1):
        body = http.get("mindicador", f"{base_url}/api/{code}/{year}")
        try:
            payload = json.loads(body)
            if payload.get("codigo", code) != code:
                raise SourceError(f"mindicador {code}/{year}: answered for {payload['codigo']!r}")
            for item in payload["serie"]:
                days.append(pd.Timestamp(item["fecha"][:10]))
                values.append(float(item["valor"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"mindicador {code}/{year}: malformed ({exc!r:.80})") from None
    series = pd.Series(values, index=pd.DatetimeIndex(days, name="date"), dtype=float)
    series = series[~series.index.duplicated(keep="first")].sort_index()
    return series[series.index >= pd.Timestamp(start)]
