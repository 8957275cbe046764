"""Servers on a free local port and a headless Chromium to drive their pages.

The web stack is the optional extra ``dkt[serve]`` and the browser is Debian's ``chromium``
with ``chromium-driver`` (``.ci/run`` installs them); where either is missing the tests
that need it skip and say which.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60.0) -> None:
    """Poll ``url`` until it answers; a server that exits first fails with its output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{out}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds:.0f} s")


@contextlib.contextmanager
def running(
    args: list[str], health_path: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``python -m dkt <args> --port P`` until the block ends; yields (base url, process)."""
    pytest.importorskip(
        "fastapi", reason="the web stack is not installed (pip install 'dkt[serve]')"
    )
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dkt", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + health_path, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve the ASGI ``app`` with a real uvicorn server on 127.0.0.1, in a thread of this
    process (so a test can count what the app does), until the block ends; yields its URL."""
    uvicorn = pytest.importorskip(
        "uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')"
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def browser(tmp_path: Path):
    """A headless Chromium (Selenium) that downloads into ``tmp_path / 'downloads'``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("Chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
