"""Manual profile (not a test): CPU cost per audio event through ``agent.receive()``.

Runs the OpenAI Realtime emulator in a child process (so only the client's CPU is
counted), asks it for one long spoken reply of N 20 ms audio deltas, and measures the
client process's CPU time while ``agent.receive()`` takes them::

    PYTHONPATH=$PWD python tests/agent/profile_receive.py            # 20,000 deltas, 3 runs
    N=2000 INTERVAL=0.002 PYTHONPATH=$PWD python tests/agent/profile_receive.py  # paced

Environment: ``N`` (deltas), ``INTERVAL`` (seconds between deltas, 0: as fast as the
socket takes them), ``RUNS``. Numbers for the agent guide come from alternating runs of
this against the previous version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import trio

N = int(os.environ.get("N", "20000"))
INTERVAL = float(os.environ.get("INTERVAL", "0"))


async def _serve() -> None:
    from trio_bidi.testing import OpenAIRealtimeEmulator, SpokenReply

    async with OpenAIRealtimeEmulator() as emulator:
        for _ in range(20):
            emulator.queue(
                SpokenReply(text="x", audio_ms=N * 20, chunk_ms=20, chunk_interval_s=INTERVAL)
            )
        print(emulator.url, flush=True)
        await trio.sleep_forever()


async def _client(url: str) -> None:
    from trio_bidi import BidiAgent, BidiAudioStreamEvent, BidiResponseCompleteEvent
    from trio_bidi.models import BidiOpenAIRealtimeModel

    model = BidiOpenAIRealtimeModel(
        model_id="gpt-realtime", client_config={"api_key": "test-key", "url": url}
    )
    async with BidiAgent(model=model) as agent:
        await agent.send("go")
        count = 0
        cpu_start = time.process_time()
        async for event in agent.receive():
            if isinstance(event, BidiAudioStreamEvent):
                count += 1
            elif isinstance(event, BidiResponseCompleteEvent):
                break
        cpu = time.process_time() - cpu_start
    print(f"events={count} cpu_s={cpu:.3f} us_per_event={cpu / count * 1e6:.1f}")


def main() -> None:
    """Serve (``serve`` argument) or measure against a served child process."""
    if sys.argv[1:] == ["serve"]:
        trio.run(_serve)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        for _ in range(int(os.environ.get("RUNS", "3"))):
            trio.run(_client, url)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
