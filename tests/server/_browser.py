"""Headless Chromium for the page tests: a fake microphone that speaks, and bounded waits."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def spoken_wav(directory: Path, text: str, *, silence_s: float = 2.5) -> Path:
    """A WAV of ``text`` spoken by espeak-ng, then ``silence_s`` of silence.

    Chromium loops the fake microphone's file, so the "user" speaks, pauses, and speaks
    again: the second time over the assistant's reply (a barge-in).
    """
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is needed for the browser tests (apt-get install espeak-ng)"
    raw = directory / "speech-raw.wav"
    subprocess.run([espeak, "-s", "150", "-w", str(raw), text], check=True, timeout=30)
    with wave.open(str(raw), "rb") as source:
        rate = source.getframerate()
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    padded = np.concatenate([samples, np.zeros(int(rate * silence_s), dtype="<i2")])
    path = directory / "speech.wav"
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(rate)
        target.writeframes(padded.tobytes())
    return path


def start_chromium(profile: Path, wav: Path | None = None) -> Any:
    """Start headless Chromium through chromedriver (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,800",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    if wav is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={wav}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


def page_state(driver: Any) -> dict[str, Any]:
    """``window.trioBidi``: what the page counted."""
    state: dict[str, Any] = json.loads(
        driver.execute_script("return JSON.stringify(window.trioBidi)")
    )
    return state


def wait_for(driver: Any, condition: str, timeout_s: float = 20.0) -> None:
    """Wait until the JavaScript expression ``condition`` is true on the page."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
            lambda d: d.execute_script(f"return Boolean({condition})")
        )
    except TimeoutException:
        logs = "\n".join(str(entry.get("message")) for entry in driver.get_log("browser"))
        raise AssertionError(
            f"the page never reached: {condition}\nstate: {page_state(driver)}\nconsole:\n{logs}"
        ) from None
