"""What the audio tests start, they stop: the private PulseAudio daemon ends with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.io.conftest import DevicesUnavailable, pulseaudio_pids, virtual_devices

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_test_session_leaves_no_daemon_behind(tmp_path: Path) -> None:
    if not shutil.which("pulseaudio"):
        if os.environ.get("CI") == "true":
            pytest.fail("pulseaudio is required under CI=true")
        pytest.skip("pulseaudio is not installed")
    # A whole pytest session that needs the devices, started without them: its `sd`
    # fixture starts a private daemon (under --basetemp) and must stop it at the end.
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "ALSA_CONFIG_PATH")}
    env["PYTHONPATH"] = str(ROOT)
    test = "tests/io/test_cli_devices.py::test_devices_lists_the_virtual_devices"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"),
            *("--basetemp", str(tmp_path / "session"), test),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert not pulseaudio_pids(tmp_path)


def test_the_daemon_goes_even_when_the_test_process_is_killed(tmp_path: Path) -> None:
    if not shutil.which("pulseaudio"):
        if os.environ.get("CI") == "true":
            pytest.fail("pulseaudio is required under CI=true")
        pytest.skip("pulseaudio is not installed")
    directory = tmp_path / "audio"
    # A process that starts the devices and dies at once, with no chance to clean up.
    child = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from tests.io.conftest import virtual_devices\n"
        "with virtual_devices(Path(sys.argv[1]), exit_idle_s=1):\n"
        "    print('started', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(directory)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout == "started\n", result.stderr
    assert result.returncode == -9
    for _ in range(100):
        if not pulseaudio_pids(directory):
            break
        time.sleep(0.1)
    assert not pulseaudio_pids(directory)
