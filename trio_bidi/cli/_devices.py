"""``trio-bidi devices``: the audio devices PortAudio sees."""

from __future__ import annotations

from typing import IO, Any

from ..io._audio import import_sounddevice

__all__ = ["list_devices"]


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
    if not devices:
        out.write(
            "No audio devices found. On a headless machine, scripts/virtual_audio.sh starts a\n"
            "virtual speaker and microphone (see docs/io.md).\n"
        )
        return 0
    width = max(len("name"), *(len(str(d["name"])) for d in devices))
    out.write(f"{'id':>3}  {'name':<{width}}  {'in':>3}  {'out':>3}  {'rate':>6}  api    default\n")
    for index, device in enumerate(devices):
        marks = []
        if index == default_in:
            marks.append("input")
        if index == default_out:
            marks.append("output")
        api = hostapis[device["hostapi"]]["name"] if device["hostapi"] < len(hostapis) else "?"
        out.write(
            f"{index:>3}  {device['name']:<{width}}  {device['max_input_channels']:>3}  "
            f"{device['max_output_channels']:>3}  {device['default_samplerate']:>6.0f}  "
            f"{api:<6} {'+'.join(marks)}\n".rstrip()
            + "\n"
        )
    out.write("Use an id or a name with `trio-bidi chat --input-device ... --output-device ...`.\n")
    return len(devices)
