"""The harmonize page in a real browser, against ``dkt serve`` started as a user starts it.

A person uploads a painting and a cut-out, moves the object, presses Harmonize and downloads
the result; the file they get must hold the painting's own bytes outside the object.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dkt.inference.paste import paste
from tests.serve.conftest import running


def _painting(height: int = 72, width: int = 96) -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    bands = np.stack([120 + 60 * np.sin(xx / 6), 110 + 50 * np.cos(yy / 8), 90 + 0 * xx], -1)
    return np.clip(bands + rng.normal(0, 12, bands.shape), 0, 255).astype(np.uint8)


def _cutout(height: int = 24, width: int = 30) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((yy - height / 2) / (height / 2.2)) ** 2 + ((xx - width / 2) / (width / 2.2)) ** 2
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = (230, 40, 200)
    rgba[..., 3] = np.clip((1.15 - inside) * 400, 0, 255).astype(np.uint8)
    return rgba


def _wait(browser, condition, what: str, seconds: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, seconds, poll_frequency=0.1).until(lambda _: condition())
    except Exception as exc:
        status = browser.find_element("id", "status").text
        raise AssertionError(f"{what} (page status: {status!r})") from exc


def _downloaded(folder: Path, name: str, seconds: float = 30.0) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = folder / name
        if done.is_file() and not list(folder.glob("*.crdownload")) and done.stat().st_size:
            return done
        time.sleep(0.1)
    raise AssertionError(f"no {name} in {folder} after {seconds:.0f} s: {list(folder.iterdir())}")


def test_upload_place_harmonize_and_download_keeps_the_painting(
    browser, tiny_model: Path, tmp_path: Path
) -> None:
    painting, cutout = _painting(), _cutout()
    Image.fromarray(painting).save(tmp_path / "painting.png")
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")
    at, scale = (12, 30), 1.5  # set through the page's fields, as a user would type them

    args = ["serve", "--model", str(tiny_model), "--device", "cpu"]
    with running(args, "/v1/health") as (base, _process):
        browser.get(base + "/")
        find = lambda element_id: browser.find_element("id", element_id)  # noqa: E731
        assert find("harmonize").get_attribute("disabled") is not None
        find("painting").send_keys(str(tmp_path / "painting.png"))
        find("cutout").send_keys(str(tmp_path / "cutout.png"))
        _wait(browser, lambda: find("harmonize").is_enabled(), "Harmonize never became enabled")
        browser.execute_script(
            "const s = document.getElementById('scale'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('input'));",
            str(scale),
        )
        for axis, value in zip(("x", "y"), at, strict=True):
            find(axis).clear()
            find(axis).send_keys(str(value))
        find("harmonize").click()
        link = _wait(browser, lambda: find("download").is_displayed() and find("download"),
                     "no download link after Harmonize")  # fmt: skip
        assert link.get_attribute("href").startswith("blob:")
        assert link.get_attribute("download") == "harmonized.png"
        assert find("result").get_attribute("src") == link.get_attribute("href")
        link.click()
        saved = _downloaded(browser.downloads, "harmonized.png")

    result = np.asarray(Image.open(saved).convert("RGB"))
    composite, mask = paste(painting, cutout, at, scale)
    assert result.shape == painting.shape
    outside = mask == 0
    np.testing.assert_array_equal(result[outside], painting[outside])
    assert (result[~outside] != composite[~outside]).any(), "the object came back unchanged"


def test_the_strength_slider_at_0_downloads_the_pasted_composite(
    browser, tiny_model: Path, tmp_path: Path
) -> None:
    painting, cutout = _painting(), _cutout()
    Image.fromarray(painting).save(tmp_path / "painting.png")
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")

    args = ["serve", "--model", str(tiny_model), "--device", "cpu"]
    with running(args, "/v1/health") as (base, _process):
        browser.get(base + "/")
        find = lambda element_id: browser.find_element("id", element_id)  # noqa: E731
        slider = find("strength")
        assert slider.get_attribute("type") == "range"
        assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "1")
        assert find("strength-value").text == "1.00"
        browser.execute_script(
            "const s = document.getElementById('strength'); s.value = '0';"
            "s.dispatchEvent(new Event('input'));"
        )
        assert find("strength-value").text == "0.00"
        find("painting").send_keys(str(tmp_path / "painting.png"))
        find("cutout").send_keys(str(tmp_path / "cutout.png"))
        _wait(browser, lambda: find("harmonize").is_enabled(), "Harmonize never became enabled")
        find("harmonize").click()
        link = _wait(browser, lambda: find("download").is_displayed() and find("download"),
                     "no download link after Harmonize")  # fmt: skip
        link.click()
        saved = _downloaded(browser.downloads, "harmonized.png")

    result = np.asarray(Image.open(saved).convert("RGB"))
    composite, _ = paste(painting, cutout)
    np.testing.assert_array_equal(result, composite)  # strength 0: the object as pasted


@pytest.fixture
def browser(browser):
    """The shared headless Chromium, its console errors checked once the test is done."""
    yield browser
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
