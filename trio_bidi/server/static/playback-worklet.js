// Playback on the audio thread: a jitter buffer in front of the speaker.
//
// Messages in:  {type: "audio", pcm: ArrayBuffer (Int16), rate, channels}
//               {type: "mark"}   a response starts: count what is played from here
//               {type: "flush"}  the response is complete: play what is left, no waiting
//               {type: "clear"}  barge-in: drop everything queued now
// Messages out: {type: "started"} audio starts after silence (for turn latency)
//               {type: "cleared", playedMs, clearedMs} answer to "clear"
//               {type: "stats", bufferedMs, playedMs, underruns, drops} ten times a second
//
// Audio is resampled from the model's rate to the context's rate (linear interpolation
// with the fractional position carried across messages) and queued in a ring buffer.
// Playback starts once `prebufferMs` is queued (or the response is complete) and, after
// an underrun, waits for `prebufferMs` again, so network jitter becomes a short pause
// instead of clicks.

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { prebufferMs, capacityS } = options.processorOptions;
    this.ring = new Float32Array(Math.round(sampleRate * capacityS));
    this.read = 0;          // total samples read from the ring
    this.written = 0;       // total samples written to the ring
    this.mark = 0;          // `written` when the current response started
    this.prebuffer = Math.round((sampleRate * prebufferMs) / 1000);
    this.state = "idle";    // idle | buffering | playing
    this.flushed = false;
    this.underruns = 0;
    this.drops = 0;
    this.prev = 0;          // resampler: the last input sample
    this.pos = -1;          // resampler: next output position, in input samples
    this.sinceStats = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "audio") {
      this.push(new Int16Array(msg.pcm), msg.rate, msg.channels || 1);
    } else if (msg.type === "mark") {
      this.mark = this.written;
      this.flushed = false;
    } else if (msg.type === "flush") {
      this.flushed = true;
    } else if (msg.type === "clear") {
      const played = Math.max(0, this.read - this.mark);
      const cleared = this.written - this.read;
      this.read = this.written;
      this.mark = this.written;
      this.state = "idle";
      this.prev = 0;
      this.pos = -1;
      this.port.postMessage({
        type: "cleared",
        playedMs: (played * 1000) / sampleRate,
        clearedMs: (cleared * 1000) / sampleRate,
      });
    }
  }

  push(pcm, rate, channels) {
    const frames = Math.floor(pcm.length / channels);
    if (frames === 0) return;
    const step = rate / sampleRate;
    const ring = this.ring;
    const size = ring.length;
    let pos = this.pos;
    while (pos <= frames - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.prev : pcm[i * channels] / 32768;
      const b = i + 1 < frames ? pcm[(i + 1) * channels] / 32768 : a;
      if (this.written - this.read < size) {
        ring[this.written % size] = a + (b - a) * frac;
        this.written++;
      } else {
        this.drops++;
      }
      pos += step;
    }
    this.prev = pcm[(frames - 1) * channels] / 32768;
    this.pos = pos - frames;
    if (this.state === "idle") this.state = "buffering";
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    const n = ch0.length;
    const buffered = this.written - this.read;
    if (this.state === "buffering" && (buffered >= this.prebuffer || (this.flushed && buffered > 0))) {
      this.state = "playing";
      this.port.postMessage({ type: "started" });
    }
    let i = 0;
    if (this.state === "playing") {
      const size = this.ring.length;
      for (; i < n && this.read < this.written; i++) {
        ch0[i] = this.ring[this.read % size];
        this.read++;
      }
      if (this.read === this.written) {
        if (i < n && !this.flushed) this.underruns++;
        this.state = this.flushed ? "idle" : "buffering";
      }
    }
    for (; i < n; i++) ch0[i] = 0;
    for (let c = 1; c < out.length; c++) out[c].set(ch0);
    this.sinceStats += n;
    if (this.sinceStats >= sampleRate / 10) {
      this.sinceStats = 0;
      this.port.postMessage({
        type: "stats",
        bufferedMs: ((this.written - this.read) * 1000) / sampleRate,
        playedMs: (this.read * 1000) / sampleRate,
        responsePlayedMs: (Math.max(0, this.read - this.mark) * 1000) / sampleRate,
        underruns: this.underruns,
        drops: this.drops,
      });
    }
    return true;
  }
}

registerProcessor("trio-bidi-playback", PlaybackProcessor);
