"""``trio-bidi devices`` against the virtual PortAudio devices (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import pytest

from tests.io.conftest import DEVICES

pytestmark = pytest.mark.audio_device


def test_devices_lists_the_virtual_devices(sd: ModuleType) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_bidi", "devices"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["id", "name", "in", "out", "rate"]
    rows = {line.split()[1]: line.split() for line in lines[1:] if line[:3].strip().isdigit()}
    assert rows.keys() >= DEVICES
    for name in DEVICES:
        index, _name, inputs, outputs, rate = rows[name][:5]
        assert sd.query_devices(int(index))["name"] == name
        assert int(inputs) >= 1
        assert int(outputs) >= 1
        assert float(rate) > 0
    assert rows["default"][-1] == "input+output"


def test_devices_without_portaudio_devices_says_how_to_get_some(sd: ModuleType) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "ALSA_CONFIG_PATH")}
    # Without the virtual devices' ALSA configuration a headless machine has no device.
    result = subprocess.run(
        [sys.executable, "-m", "trio_bidi", "devices"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if not result.stdout.startswith("No audio devices found"):
        pytest.skip("this machine has audio devices of its own")
    assert "apt-get install pulseaudio" in result.stdout
    assert "scripts/" not in result.stdout  # exists only in a clone of the project
