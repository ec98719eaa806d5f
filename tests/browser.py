"""Headless Chromium driven over its DevTools protocol on 127.0.0.1, for the tests that load a
page as a reader does (the operator report, the documentation site)."""

import base64
import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from urllib.request import urlopen

import matplotlib.pyplot as plt
import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no chromium to load the page (apt-get install chromium; .ci/run installs it)"


class Browser:
    """Headless Chromium driven over its DevTools protocol, on 127.0.0.1 only."""

    def __init__(self, profile: Path):
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",  # Chromium picks a free port, written below
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) == 2):
            assert time.monotonic() < deadline and self.process.poll() is None, "no DevTools"
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        targets = json.load(urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.events, self.last_id = [], 0

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last_id:
                assert "error" not in message, f"{method}: {message.get('error')}"
                return message["result"]
            self.events.append(message)

    def load(self, page: Path | str, width: int) -> None:
        """A file or a URL, in a window `width` pixels wide, until its load event."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=800,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.events.clear()
        self.call("Page.navigate", url=page.as_uri() if isinstance(page, Path) else page)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.socket.recv()))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"]["value"]

    def console_errors(self) -> list:
        return [
            e["params"]
            for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]

    def charts(self, selector: str = "img.chart") -> list[dict]:
        """Every image `selector` finds: whether it decoded, and where it lies on the page."""
        return self.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(selector)}), i => {{"
            " const r = i.getBoundingClientRect();"
            " return {alt: i.alt, decoded: i.complete && i.naturalWidth > 0,"
            " x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; })"
        )

    def box(self, selector: str) -> dict:
        """Where the first element `selector` finds lies on the page."""
        return self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect();"
            " return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; })()"
        )

    def screenshot(self, width: int):
        height = self.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        return plt.imread(io.BytesIO(base64.b64decode(shot["data"])))[:, :, :3]

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)
