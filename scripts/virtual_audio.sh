#!/usr/bin/env bash
# A virtual speaker and microphone for PortAudio on a machine without a sound card.
#
# Runs a private PulseAudio daemon with null sinks and writes an ALSA configuration that
# names them, so PortAudio (through ALSA's pulse plugin) lists them as devices:
#
#   vspeaker          play here (the speaker)
#   vspeaker_monitor  record here: what was played on vspeaker
#   vmic_feed         play here to speak into the microphone
#   vmic              record here (the microphone)
#   default           plays on vspeaker, records from vmic
#
# Usage (needs pulseaudio, pulseaudio-utils, libasound2-plugins; see .ci/run):
#   eval "$(scripts/virtual_audio.sh start)"   # idempotent; prints the two exports below
#   scripts/virtual_audio.sh stop              # returns once the daemon has exited
#
# TRIO_BIDI_AUDIO_DIR (default /tmp/trio-bidi-audio) holds the socket, the configuration
# and the log: a directory of its own gives a daemon of its own (the tests use one).
# TRIO_BIDI_AUDIO_EXIT_IDLE (default -1, never): the daemon exits by itself after that
# many seconds without a client (the tests keep one connected while they run).
#
# The exports (PULSE_SERVER, ALSA_CONFIG_PATH) must be in the environment before
# PortAudio initialises (before `import sounddevice`).
set -euo pipefail

dir=${TRIO_BIDI_AUDIO_DIR:-/tmp/trio-bidi-audio}
# Seconds without a client before the daemon exits by itself (-1: never).
exit_idle=${TRIO_BIDI_AUDIO_EXIT_IDLE:--1}
rate=${TRIO_BIDI_AUDIO_RATE:-24000}
socket=$dir/pulse/native
server=unix:$socket

ctl() { pactl --server="$server" "$@"; }
running() { ctl info >/dev/null 2>&1; }

# The daemon's pid, if it is ours and alive (its command line names our socket).
daemon_pid() {
    local pid
    pid=$(cat "$dir/runtime/pulse/pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "socket=$socket" &&
        echo "$pid"
}

case "${1:-start}" in
stop)
    # Ask the daemon to exit, wait until it has (5 s at most), then make sure.
    pid=$(daemon_pid) || pid=
    if running; then ctl exit || true; fi
    if [ -n "$pid" ]; then
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if daemon_pid >/dev/null; then
            echo "$0: pulseaudio (pid $pid) did not exit; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac

for tool in pulseaudio pactl; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)" >&2
        exit 1
    }
done

mkdir -p "$dir/pulse"
chmod 700 "$dir/pulse"

# PortAudio enumerates the PCMs defined in ALSA's configuration: define one per device.
{
    printf 'pcm.!default { type pulse; server "%s" }\n' "$server"
    printf 'ctl.!default { type pulse; server "%s" }\n' "$server"
    for device in vspeaker vspeaker.monitor vmic vmic_feed; do
        printf 'pcm.%s { type pulse; server "%s"; device "%s" }\n' "${device/./_}" "$server" "$device"
    done
} >"$dir/asound.conf"

if ! running; then
    rm -f "$socket"
    mkdir -p "$dir/runtime"
    chmod 700 "$dir/runtime"
    # -n: no default.pa, so no hardware, udev, dbus or idle-suspend modules. A runtime
    # directory of its own (pid file), so a desktop's sound server does not stop it.
    XDG_RUNTIME_DIR="$dir/runtime" pulseaudio -n -D --exit-idle-time="$exit_idle" --disable-shm=yes \
        --log-target="file:$dir/pulseaudio.log" \
        -L "module-native-protocol-unix auth-anonymous=1 socket=$socket" </dev/null >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        running && break
        sleep 0.1
    done
    running || {
        echo "$0: pulseaudio did not start; its log:" >&2
        tail -n 20 "$dir/pulseaudio.log" >&2 || true
        exit 1
    }
fi

created=0
has() { ctl list short "$1" | cut -f2 | grep -qx "$2"; }
for sink in vspeaker vmic_feed trio_bidi_idle; do
    if ! has sinks "$sink"; then
        ctl load-module module-null-sink sink_name="$sink" rate="$rate" channels=1 format=s16le >/dev/null
        created=1
    fi
done
if ! has sources vmic; then
    ctl load-module module-remap-source source_name=vmic master=vmic_feed.monitor channels=1 >/dev/null
    created=1
fi
# A null sink nobody reads renders about 2 s ahead, which stalls a new stream for up to 2 s.
# A 20 ms loopback from each monitor into a spare sink keeps them in step with the clock.
for sink in vspeaker vmic_feed; do
    if ! ctl list short modules | grep -q "source=$sink.monitor"; then
        ctl load-module module-loopback source="$sink.monitor" sink=trio_bidi_idle latency_msec=20 >/dev/null
        created=1
    fi
done
ctl set-default-sink vspeaker
ctl set-default-source vmic
if [ "$created" = 1 ]; then
    sleep 2.2 # let the first 2 s block of the new sinks pass
fi

printf 'export PULSE_SERVER=%s\n' "$server"
printf 'export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:%s\n' "$dir/asound.conf"
