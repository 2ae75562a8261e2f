// The trio_bidi voice page: one WebSocket to the gateway, the microphone and the speaker.
//
// Wire (see trio_bidi/server/_wire.py): JSON text frames carry the library's event dicts;
// audio goes as binary frames (8-byte header: "A", channels, 0, 0, rate as uint32 LE,
// then 16-bit PCM) or, with ?audio=base64, as bidi_audio_input / bidi_audio_stream JSON.
// The first server message is {type: "gateway_session"}: session id, history, formats.
//
// URL: ?session=<id> continues a conversation (the page puts its id there, so a reload
// continues it too); #token=<token> authenticates (sent as the subprotocol bearer.<token>).

const params = new URLSearchParams(location.search);
const hashParams = new URLSearchParams(location.hash.slice(1));
const CHUNK_MS = 20;
const SPEECH_RMS = 0.02;          // microphone level that counts as speech (for latency)
const RECONNECT_MAX_MS = 8000;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), statusText: $("status-text"), talk: $("talk"), text: $("text"),
  send: $("send"), form: $("text-form"), level: $("level"), conversation: $("conversation"),
  session: $("session-id"), model: $("model"), worker: $("worker"), audio: $("audio-format"),
  connections: $("connections"), restarts: $("restarts"), restored: $("restored"),
  buffered: $("buffered"), played: $("played"), underruns: $("underruns"), clears: $("clears"),
  latencies: $("latencies"),
};

// Everything the page knows, also read by the browser tests.
const state = (window.trioBidi = {
  connection: "connecting", connections: 0, sessionId: params.get("session"),
  restoredMessages: 0, history: [], modelRestarts: 0, errors: [], transcripts: [],
  toolCalls: [], toolResults: [], audioChunksReceived: 0, audioMsReceived: 0,
  audioChunksSent: 0, audioJsonReceived: 0, playedMs: 0, bufferedMs: 0, underruns: 0, clears: 0,
  playbackReports: [], latenciesMs: [], talking: false, closeCode: null,
});

let ws = null;
let hello = null;
let reconnectDelay = 250;
let ctx = null;               // the AudioContext (one for capture and playback)
let player = null;            // the playback worklet node
let capture = null;           // {stream, source, node}
let lastSpeechAt = null;      // performance.now() of the last loud microphone chunk
let turnStartAt = null;       // end of the user's turn (speech or a typed message)
let awaitingFirstAudio = false;
let responseActive = false;   // between bidi_response_start and bidi_response_complete
const partial = { user: null, assistant: null };   // live transcript lines
const tools = new Map();      // toolUseId -> line

// ------------------------------------------------------------------ the conversation view

function addLine(kind, text, who) {
  const line = document.createElement("div");
  line.className = `line ${kind}`;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    line.append(label);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  line.append(body);
  ui.conversation.append(line);
  ui.conversation.scrollTop = ui.conversation.scrollHeight;
  return line;
}

const note = (text) => addLine("note", text);
const WHO = { user: "You", assistant: "Assistant" };

function showTranscript(ev) {
  const role = ev.role;
  const text = ev.current_transcript ?? ev.text;
  let line = partial[role];
  if (!line) {
    line = partial[role] = addLine(`${role} partial`, "", WHO[role]);
  }
  if (ev.is_final) {
    line.classList.remove("partial");
    line.querySelector(".text").textContent = text;
    partial[role] = null;
    state.transcripts.push({ role, text, final: true });
  } else {
    line.querySelector(".text").textContent =
      ev.current_transcript != null ? ev.current_transcript : line.querySelector(".text").textContent + ev.text;
  }
}

function setStatus(connection, text) {
  state.connection = connection;
  ui.status.dataset.state = connection;
  ui.statusText.textContent = text;
  const open = connection === "connected";
  ui.talk.disabled = !open;
  ui.text.disabled = !open;
  ui.send.disabled = !open;
}

// ------------------------------------------------------------------ audio

async function audioContext() {
  if (!ctx) {
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("playback-worklet.js");
    await ctx.audioWorklet.addModule("capture-worklet.js");
    player = new AudioWorkletNode(ctx, "trio-bidi-playback", {
      numberOfInputs: 0, outputChannelCount: [1],
      processorOptions: { prebufferMs: 80, capacityS: 60 },
    });
    player.connect(ctx.destination);
    player.port.onmessage = (e) => onPlayer(e.data);
  }
  if (ctx.state !== "running") await ctx.resume().catch(() => {});
  return ctx;
}

function onPlayer(msg) {
  if (msg.type === "stats") {
    state.playedMs = msg.playedMs;
    state.bufferedMs = msg.bufferedMs;
    state.underruns = msg.underruns;
    ui.played.textContent = `${Math.round(msg.playedMs)} ms`;
    ui.buffered.textContent = `${Math.round(msg.bufferedMs)} ms`;
    ui.underruns.textContent = msg.underruns;
  } else if (msg.type === "started") {
    if (awaitingFirstAudio && turnStartAt != null) {
      const latency = performance.now() - turnStartAt;
      state.latenciesMs.push(latency);
      const item = document.createElement("li");
      item.textContent = `${Math.round(latency)} ms`;
      ui.latencies.append(item);
    }
    awaitingFirstAudio = false;
  } else if (msg.type === "cleared") {
    state.clears += 1;
    ui.clears.textContent = state.clears;
    // Report only when a reply was cut (speech can also start while nothing plays).
    if (!responseActive && msg.clearedMs === 0) return;
    const played = Math.round(msg.playedMs);
    state.playbackReports.push({ playedMs: played, clearedMs: msg.clearedMs });
    sendJson({ type: "gateway_playback", played_ms: played });
  }
}

function playAudio(pcmBuffer, rate, channels) {
  state.audioChunksReceived += 1;
  state.audioMsReceived += (pcmBuffer.byteLength / 2 / channels / rate) * 1000;
  if (player) player.port.postMessage({ type: "audio", pcm: pcmBuffer, rate, channels }, [pcmBuffer]);
}

async function startTalking() {
  const context = await audioContext();
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "trio-bidi-capture", {
    numberOfOutputs: 0,
    processorOptions: { outRate: hello.input_audio.sample_rate, chunkMs: CHUNK_MS },
  });
  node.port.onmessage = (e) => onMicChunk(e.data);
  source.connect(node);
  capture = { stream, source, node };
  state.talking = true;
  ui.talk.setAttribute("aria-pressed", "true");
  ui.talk.textContent = "■ Stop";
}

function stopTalking() {
  if (capture) {
    capture.node.port.postMessage("stop");
    capture.source.disconnect();
    capture.stream.getTracks().forEach((t) => t.stop());
    capture = null;
  }
  state.talking = false;
  ui.level.style.width = "0%";
  ui.talk.setAttribute("aria-pressed", "false");
  ui.talk.textContent = "● Talk";
}

function onMicChunk({ pcm, rms }) {
  if (!capture) return;   // a chunk posted just before the microphone stopped
  ui.level.style.width = `${Math.min(100, rms * 400)}%`;
  const now = performance.now();
  if (rms >= SPEECH_RMS) {
    lastSpeechAt = now;
  } else if (lastSpeechAt != null && now - lastSpeechAt < 2 * CHUNK_MS) {
    turnStartAt = lastSpeechAt;     // speech just ended: a turn may start here
    awaitingFirstAudio = true;
  }
  if (!ws || ws.readyState !== WebSocket.OPEN || !hello) return;
  const rate = hello.input_audio.sample_rate;
  if (hello.binary_audio !== false && params.get("audio") !== "base64") {
    const frame = new Uint8Array(8 + pcm.byteLength);
    const view = new DataView(frame.buffer);
    frame[0] = 0x41; frame[1] = 1;
    view.setUint32(4, rate, true);
    frame.set(new Uint8Array(pcm), 8);
    ws.send(frame.buffer);
  } else {
    sendJson({ type: "bidi_audio_input", audio: base64(pcm), format: "pcm", sample_rate: rate, channels: 1 });
  }
  state.audioChunksSent += 1;
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unbase64(text) {
  const s = atob(text);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes.buffer;
}

// ------------------------------------------------------------------ the WebSocket

function sendJson(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.sessionId) url.searchParams.set("session", state.sessionId);
  if (params.get("audio")) url.searchParams.set("audio", params.get("audio"));
  const protocols = ["trio-bidi"];
  const token = hashParams.get("token");
  if (token) protocols.push(`bearer.${token}`);
  setStatus(state.connections ? "reconnecting" : "connecting",
    state.connections ? "reconnecting…" : "connecting…");
  ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => onMessage(e.data);
  ws.onclose = (e) => onClose(e);
}

function onClose(e) {
  ws = null;
  hello = null;
  state.closeCode = e.code;
  for (const role of ["user", "assistant"]) partial[role] = null;
  if (e.code === 4001) {
    setStatus("closed", "opened in another tab");
    stopTalking();
    return;
  }
  if (e.code === 1008) {
    setStatus("closed", "refused by the server");
    stopTalking();
    return;
  }
  if (e.code === 1000) {
    setStatus("closed", "conversation ended (reload to start again)");
    stopTalking();
    return;
  }
  setStatus("reconnecting", `connection lost (${e.code}); reconnecting…`);
  note(`connection lost (code ${e.code}); reconnecting`);
  setTimeout(connect, reconnectDelay);
  reconnectDelay = Math.min(RECONNECT_MAX_MS, reconnectDelay * 2);
}

function onMessage(data) {
  if (data instanceof ArrayBuffer) {
    const view = new DataView(data);
    if (data.byteLength < 8 || view.getUint8(0) !== 0x41) return;
    playAudio(data.slice(8), view.getUint32(4, true), view.getUint8(1));
    return;
  }
  const ev = JSON.parse(data);
  switch (ev.type) {
    case "gateway_session": return onHello(ev);
    case "bidi_audio_stream":
      state.audioJsonReceived += 1;
      return playAudio(unbase64(ev.audio), ev.sample_rate, ev.channels);
    case "bidi_transcript_stream": return showTranscript(ev);
    case "bidi_response_start":
      responseActive = true;
      if (player) player.port.postMessage({ type: "mark" });
      return;
    case "bidi_response_complete":
      responseActive = false;
      if (player) player.port.postMessage({ type: "flush" });
      return;
    case "bidi_interruption":
      // Barge-in: stop playing at once; the player answers with what it played.
      if (player) player.port.postMessage({ type: "clear" });
      if (partial.assistant) { partial.assistant.classList.add("interrupted"); partial.assistant = null; }
      else { const last = [...ui.conversation.querySelectorAll(".line.assistant")].pop(); if (last) last.classList.add("interrupted"); }
      return;
    case "tool_use_stream": {
      const use = ev.current_tool_use || {};
      const args = typeof use.input === "string" ? use.input : JSON.stringify(use.input ?? {});
      const text = `${use.name}(${args})`;
      const existing = tools.get(use.toolUseId);
      if (existing) existing.querySelector(".text").textContent = text;
      else tools.set(use.toolUseId, addLine("tool", text, "tool call"));
      state.toolCalls.push({ id: use.toolUseId, name: use.name });
      return;
    }
    case "tool_result": {
      const r = ev.tool_result;
      const content = (r.content || []).map((b) => b.text ?? JSON.stringify(b.json)).join(" ");
      addLine("tool", `→ ${r.status}: ${content}`, "tool result");
      state.toolResults.push({ id: r.toolUseId, status: r.status, content });
      return;
    }
    case "bidi_connection_restart":
      state.modelRestarts += 1;
      ui.restarts.textContent = state.modelRestarts;
      note("the model connection restarted; the conversation goes on");
      return;
    case "bidi_connection_close":
      note(`conversation ended: ${ev.reason}`);
      return;
    case "bidi_error":
      state.errors.push(ev);
      addLine("error", `${ev.code}: ${ev.message}`, "error");
      return;
    default:
      return;
  }
}

function onHello(ev) {
  hello = ev;
  reconnectDelay = 250;
  state.connections += 1;
  state.sessionId = ev.session_id;
  state.restoredMessages = ev.restored_messages;
  state.history = ev.history;
  sessionStorage.setItem("trio-bidi-session", ev.session_id);
  const here = new URL(location.href);
  here.searchParams.set("session", ev.session_id);
  history.replaceState(null, "", here);
  ui.session.textContent = ev.session_id;
  ui.model.textContent = ev.model;
  ui.worker.textContent = ev.worker ?? "–";
  ui.audio.textContent = `${ev.input_audio.sample_rate / 1000} / ${ev.output_audio.sample_rate / 1000} kHz`;
  ui.connections.textContent = state.connections;
  ui.restored.textContent = ev.restored_messages;
  if (state.connections === 1 && ev.history.length) {
    note(`continuing session ${ev.session_id}: ${ev.restored_messages} messages restored`);
    for (const m of ev.history) addLine(`${m.role} history`, m.text, WHO[m.role]);
  } else if (state.connections > 1) {
    note(`reconnected to session ${ev.session_id} (${ev.restored_messages} messages kept)`);
  }
  setStatus("connected", "connected");
  audioContext().catch((err) => note(`audio unavailable: ${err}`));
  if (state.talking && !capture) startTalking().catch((err) => note(`microphone: ${err}`));
}

ui.talk.addEventListener("click", () => {
  if (capture) stopTalking();
  else startTalking().catch((err) => { note(`microphone: ${err}`); stopTalking(); });
});

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  audioContext().catch(() => {});
  sendJson({ type: "bidi_text_input", text, role: "user" });
  addLine("user", text, WHO.user);
  turnStartAt = performance.now();
  awaitingFirstAudio = true;
  ui.text.value = "";
});

if (!state.sessionId) state.sessionId = sessionStorage.getItem("trio-bidi-session");
connect();
