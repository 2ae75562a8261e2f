"""``trio-bidi devices``: the audio devices PortAudio sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from ..io._audio import import_sounddevice

__all__ = ["NO_DEVICES", "format_devices", "list_devices"]

NO_DEVICES = """\
No audio devices found: PortAudio sees no sound card and no sound server.
On Linux, install a sound server with its ALSA plugin and start it, for example
    sudo apt-get install pulseaudio libasound2-plugins      (Debian/Ubuntu)
or PipeWire with pipewire-pulse / pipewire-alsa; on a server without a sound card, a
PulseAudio null sink gives a virtual speaker and microphone (see the audio IO docs).
`trio-bidi chat --text` and `trio-bidi demo` need no audio device.
"""


def list_devices(out: IO[str]) -> int:
    """Print every PortAudio device with its id, channels and default rate.

    Args:
        out: Where to print the table.

    Returns:
        The number of devices listed.

    Raises:
        BidiConfigurationError: sounddevice or the PortAudio library is missing.
    """
    sd = import_sounddevice()
    devices: list[dict[str, Any]] = list(sd.query_devices())
    hostapis: list[dict[str, Any]] = list(sd.query_hostapis())
    default_in, default_out = (int(i) for i in sd.default.device)
    out.write(format_devices(devices, hostapis, default_in, default_out))
    return len(devices)


def format_devices(
    devices: Sequence[Mapping[str, Any]],
    hostapis: Sequence[Mapping[str, Any]],
    default_in: int,
    default_out: int,
) -> str:
    """Render PortAudio's device list as the table ``trio-bidi devices`` prints.

    Args:
        devices: ``sounddevice.query_devices()``.
        hostapis: ``sounddevice.query_hostapis()``.
        default_in: The default input device's index (-1: none).
        default_out: The default output device's index (-1: none).

    Returns:
        The table, or what to install when there is no device.
    """
    if not devices:
        return NO_DEVICES
    width = max(len("name"), *(len(str(d["name"])) for d in devices))
    lines = [f"{'id':>3}  {'name':<{width}}  {'in':>3}  {'out':>3}  {'rate':>6}  api    default"]
    for index, device in enumerate(devices):
        marks = []
        if index == default_in:
            marks.append("input")
        if index == default_out:
            marks.append("output")
        api = hostapis[device["hostapi"]]["name"] if device["hostapi"] < len(hostapis) else "?"
        lines.append(
            f"{index:>3}  {device['name']:<{width}}  {device['max_input_channels']:>3}  "
            f"{device['max_output_channels']:>3}  {device['default_samplerate']:>6.0f}  "
            f"{api:<6} {'+'.join(marks)}".rstrip()
        )
    lines.append(
        "Use an id or a name with `trio-bidi chat --input-device ... --output-device ...`."
    )
    return "\n".join(lines) + "\n"
