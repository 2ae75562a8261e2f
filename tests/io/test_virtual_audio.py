"""What the audio tests start, they stop: the private PulseAudio daemon ends with them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.io.conftest import DevicesUnavailable, pulseaudio_pids, virtual_devices


def test_the_private_daemon_is_stopped_on_exit(tmp_path: Path) -> None:
    if not shutil.which("pulseaudio"):
        if os.environ.get("CI") == "true":
            pytest.fail("pulseaudio is required under CI=true")
        pytest.skip("pulseaudio is not installed")
    directory = tmp_path / "audio"
    assert not pulseaudio_pids(directory)
    try:
        with virtual_devices(directory) as exports:
            running = pulseaudio_pids(directory)
            assert len(running) == 1
            assert exports["PULSE_SERVER"] == f"unix:{directory}/pulse/native"
            assert str(directory) in exports["ALSA_CONFIG_PATH"]
    except DevicesUnavailable as exc:
        pytest.fail(str(exc))  # pulseaudio is installed: it must start
    assert not pulseaudio_pids(directory)
    (pid,) = running
    assert not Path(f"/proc/{pid}").exists()
