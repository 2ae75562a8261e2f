"""Fixtures for the audio IO tests: the virtual PortAudio devices, speech, an agent handle.

The devices come from ``scripts/virtual_audio.sh`` (PulseAudio null sinks reached through
ALSA). CI starts them before the tests (``.ci/run``); elsewhere this module starts a
private daemon when it can and stops it when the session ends. With ``CI=true`` a missing
device fails the tests instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from trio_bidi.io._resample import StreamResampler

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "virtual_audio.sh"
DEVICES = {"vspeaker", "vspeaker_monitor", "vmic", "vmic_feed"}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"virtual audio device required under CI=true: {reason}")
    print(f"\nskipping audio device tests: {reason}", file=sys.stderr)
    pytest.skip(reason)


class DevicesUnavailable(Exception):
    """The virtual devices could not be started (the message says why)."""


def pulseaudio_pids(directory: Path) -> set[int]:
    """Running pulseaudio processes whose command line names ``directory``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it exited meanwhile, or is not ours to read
            continue
        if argv and argv[0].endswith(b"pulseaudio") and str(directory).encode() in b" ".join(argv):
            pids.add(int(entry.name))
    return pids


@contextlib.contextmanager
def virtual_devices(directory: Path, *, exit_idle_s: int = 10) -> Iterator[dict[str, str]]:
    """Run a private PulseAudio daemon with the virtual devices in ``directory``.

    Yields the environment PortAudio needs (``PULSE_SERVER``, ``ALSA_CONFIG_PATH``). On
    exit the daemon is stopped, and this waits until it has exited. Should this process
    die without cleaning up (a crash in PortAudio, SIGKILL), the daemon still goes: a
    keeper client holds it while this process lives, and it exits by itself
    ``exit_idle_s`` seconds after its last client left.

    Raises:
        DevicesUnavailable: pulseaudio is missing or did not start.
    """
    if not shutil.which("pulseaudio") or not shutil.which("pactl"):
        raise DevicesUnavailable("pulseaudio is not installed (see .ci/run for the packages)")
    env = {
        **os.environ,
        "TRIO_BIDI_AUDIO_DIR": str(directory),
        "TRIO_BIDI_AUDIO_EXIT_IDLE": str(exit_idle_s),
    }

    def script(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    keeper: subprocess.Popen[bytes] | None = None
    try:
        result = script("start")
        if result.returncode:
            raise DevicesUnavailable(f"{SCRIPT.name} failed: {result.stderr.strip()[-500:]}")
        exports = {}
        for line in result.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                name, value = line.removeprefix("export ").split("=", 1)
                exports[name] = value
        # A client connected for as long as this process keeps the pipe open: when the
        # pipe closes (on exit, or when this process dies), the client goes.
        keeper = subprocess.Popen(
            [
                "bash",
                "-c",
                'pactl --server="$1" subscribe >/dev/null 2>&1 & client=$!; '
                'cat >/dev/null; kill "$client" 2>/dev/null; wait',
                "keeper",
                exports["PULSE_SERVER"],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield exports
    finally:
        stopped = script("stop")
        if stopped.returncode:
            print(f"\n{SCRIPT.name} stop failed: {stopped.stderr.strip()}", file=sys.stderr)
        if keeper is not None:
            assert keeper.stdin is not None
            keeper.stdin.close()
            keeper.wait(timeout=10)


@pytest.fixture(scope="session")
def sd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``sounddevice`` with the virtual devices listed (starting them if needed).

    When the environment already names a sound server (``.ci/run`` starts the devices
    before the tests), it is used as it is. Otherwise the tests start a daemon of their own
    in a private directory and stop it when the session ends.
    """
    with contextlib.ExitStack() as stack:
        if not {"PULSE_SERVER", "ALSA_CONFIG_PATH"} <= os.environ.keys():
            try:
                exports = stack.enter_context(
                    virtual_devices(tmp_path_factory.mktemp("virtual-audio"))
                )
            except DevicesUnavailable as exc:
                _unavailable(str(exc))
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            for name, value in exports.items():
                patch.setenv(name, value)
        yield _sounddevice()


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        _unavailable(f"sounddevice/PortAudio not importable: {exc}")
    # PortAudio reads the ALSA configuration when it initialises: re-initialise in case
    # sounddevice was imported before the environment was set.
    sounddevice._terminate()
    sounddevice._initialize()
    names = {device["name"] for device in sounddevice.query_devices()}
    if not names >= DEVICES:
        _unavailable(f"virtual devices missing: found {sorted(names)}")
    module: ModuleType = sounddevice
    return module


def _speech_wav(path: Path, text: str) -> None:
    if not shutil.which("espeak-ng"):
        _unavailable("espeak-ng is not installed (see .ci/run)")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)


@pytest.fixture(scope="session")
def speech_16k(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """'hello, this is the virtual microphone' spoken by espeak-ng, as 16 kHz mono int16."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    _speech_wav(path, "hello, this is the virtual microphone")
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    samples = data.astype(np.int16).reshape(-1, channels)[:, :1]
    resampler = StreamResampler(rate, 16000)
    return np.concatenate([resampler.process(samples), resampler.flush()])[:, 0]


class _Model:
    def __init__(self, audio: Mapping[str, Any]) -> None:
        self.model_id = "test-model"
        self.config = {"audio": dict(audio)}


class RecordingHandle:
    """An ``AgentHandle`` (the IO protocol): a model configuration; records playback reports."""

    def __init__(self, input_rate: int = 16000, output_rate: int = 24000, channels: int = 1):
        self.model = _Model(
            {
                "input_rate": input_rate,
                "output_rate": output_rate,
                "channels": channels,
                "format": "pcm",
            }
        )
        self.reports: list[int] = []

    async def report_playback(self, played_ms: int) -> None:
        self.reports.append(played_ms)


def os_thread_count() -> int:
    """Threads of this process as the OS sees them (PortAudio's are not Python threads)."""
    return len(os.listdir("/proc/self/task"))
