// Microphone capture on the audio thread: mono, resampled from the context's rate to the
// model's input rate, posted as 16-bit PCM chunks of `chunkMs` with their RMS level.
//
// Resampling: a box filter over the input samples that fall in each output sample's
// period (a low-pass for downsampling) with linear interpolation between them; the
// fractional position carries over between render quanta, so the stream is continuous.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { outRate, chunkMs } = options.processorOptions;
    this.step = sampleRate / outRate;           // input samples per output sample
    this.chunk = new Int16Array(Math.round((outRate * chunkMs) / 1000));
    this.filled = 0;
    this.pos = 0;                               // position of the next output sample
    this.prev = 0;                              // last input sample of the previous quantum
    this.sumSquares = 0;
    this.active = true;
    this.port.onmessage = (e) => { if (e.data === "stop") this.active = false; };
  }

  process(inputs) {
    const input = inputs[0];
    if (!this.active) return false;
    if (!input || input.length === 0) return true;
    const x = input[0];
    const n = x.length;
    const step = this.step;
    let pos = this.pos;
    while (pos + step <= n) {
      // Average of the samples in [pos, pos + step): linear at the edges.
      let acc = 0;
      let count = 0;
      const start = Math.floor(pos);
      const end = Math.min(n - 1, Math.floor(pos + step));
      for (let i = start; i <= end; i++) { acc += i >= 0 ? x[i] : this.prev; count++; }
      const frac = pos - start;
      const first = start >= 0 ? x[start] : this.prev;
      const next = start + 1 < n ? x[start + 1] : first;
      const sample = step > 1.0 ? acc / count : first + (next - first) * frac;
      const clipped = Math.max(-1, Math.min(1, sample));
      this.chunk[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      this.sumSquares += clipped * clipped;
      if (this.filled === this.chunk.length) {
        const rms = Math.sqrt(this.sumSquares / this.filled);
        const out = this.chunk;
        const length = out.length;  // read before the transfer empties it
        this.port.postMessage({ pcm: out.buffer, rms }, [out.buffer]);
        this.chunk = new Int16Array(length);
        this.filled = 0;
        this.sumSquares = 0;
      }
      pos += step;
    }
    this.prev = x[n - 1];
    this.pos = pos - n;
    return true;
  }
}

registerProcessor("trio-bidi-capture", CaptureProcessor);
