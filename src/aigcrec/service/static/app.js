// aigcrec web demo: calls the JSON API of the server that served this page.
"use strict";
const $ = (id) => document.getElementById(id);
const signals = { face: null, voice: null };

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = "note" + (isError ? " error" : "");
}

async function call(path, body) {
  const res = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.title || res.status) + ": " + (data.detail || ""));
  return data;
}

function bars(id, probs) {
  const el = $(id);
  el.replaceChildren();
  const entries = Object.entries(probs || {}).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of entries) {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.name = name;
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = Math.max(1, Math.round(100 * p)) + "%";
    track.appendChild(bar);
    const value = document.createElement("span");
    value.textContent = p.toFixed(2);
    row.append(label, track, value);
    el.appendChild(row);
  }
}

function signalsState() {
  const used = [];
  if ($("mood").value.trim()) used.push("text");
  if (signals.voice) used.push("voice");
  if (signals.face) used.push("face");
  if ($("stated-emotion").value || $("stated-intent").value) used.push("stated");
  $("signals-state").textContent = "signals: " + (used.length ? used.join(", ") : "none");
}

async function recommend() {
  status("loading…");
  const body = { user_id: $("user").value.trim() || "guest", k: parseInt($("k").value, 10) || 12 };
  const s = {};
  if ($("mood").value.trim()) s.text = $("mood").value.trim();
  if (signals.voice) s.voice = signals.voice;
  if (signals.face) s.face = signals.face;
  if (Object.keys(s).length) body.signals = s;
  // A stated mood / purpose (the picker) replaces that part of what the signals read (docs/service.md, `stated`).
  const stated = {};
  if ($("stated-emotion").value) stated.emotion = $("stated-emotion").value;
  if ($("stated-intent").value) stated.intent = $("stated-intent").value;
  if (Object.keys(stated).length) body.stated = stated;
  try {
    const data = await call("/v1/recommend", body);
    render(data);
    const ms = Object.values(data.timings_ms).reduce((a, b) => a + b, 0);
    status(`${data.items.length} items · ${data.explanation.cold_start ? "cold start" : "personalised"} · ${ms.toFixed(1)} ms`);
  } catch (err) {
    status(err.message, true);
  }
}

function render(data) {
  const a = data.explanation.affect;
  $("emotion-label").textContent = a ? "· " + a.emotion : "(no signals)";
  $("intent-label").textContent = a ? "· " + a.intent : "";
  bars("emotion-bars", a ? a.emotion_probs : {});
  bars("intent-bars", a ? a.intent_probs : {});
  bars("modality-bars", data.explanation.modality_weights);
  const grid = $("grid");
  grid.replaceChildren();
  for (const item of data.items) {
    const card = document.createElement("article");
    card.className = "card";
    card.dataset.itemId = item.item_id;
    const name = item.title || item.item_id;  // a catalog may have no titles
    const img = document.createElement("img");
    img.src = item.image_url;
    img.alt = name;
    img.loading = "lazy";
    // An item without a servable image (or one that fails to load) shows its name instead of a broken icon.
    img.addEventListener("error", () => {
      const ph = document.createElement("div");
      ph.className = "placeholder";
      ph.textContent = name;
      img.replaceWith(ph);
    });
    const meta = document.createElement("div");
    meta.className = "meta";
    const title = document.createElement("b");
    title.textContent = name;
    const info = document.createElement("span");
    // Only what this catalog has: creator and style are optional columns.
    const extra = [item.creator_id, item.style].filter((v) => v).join(" · ");
    info.textContent = `${item.score.toFixed(3)} · ${item.source}${extra ? " · " + extra : ""}`;
    meta.append(title, info);
    const actions = document.createElement("div");
    actions.className = "actions";
    for (const [label, type, cls] of [["♥ like", "bookmark", "like"], ["skip", "skip", "skip"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = label;
      b.addEventListener("click", () => feedback(item.item_id, type, data.user_id, data.request_id));
      actions.appendChild(b);
    }
    card.append(img, meta, actions);
    grid.appendChild(card);
  }
}

// The event names the list it answers (request_id) and the user that list was served to.
async function feedback(itemId, type, userId, requestId) {
  try {
    await call("/v1/feedback", { user_id: userId, item_id: itemId, type: type, request_id: requestId });
    await recommend();
  } catch (err) {
    status(err.message, true);
  }
}

async function snapshot() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const video = $("video");
    video.hidden = false;
    video.srcObject = stream;
    await new Promise((r) => setTimeout(r, 800));
    const canvas = $("canvas");
    canvas.width = video.videoWidth || 320;
    canvas.height = video.videoHeight || 240;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    signals.face = canvas.toDataURL("image/jpeg", 0.85);
    stream.getTracks().forEach((t) => t.stop());
    video.hidden = true;
    signalsState();
  } catch (err) {
    status("webcam: " + err.message, true);
  }
}

// Browsers record compressed audio; the API takes WAV, so capture PCM and write a 16-bit WAV here.
function encodeWav(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  let bin = "";
  const bytes = new Uint8Array(buf);
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

async function record() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(stream);
    const proc = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    src.connect(proc);
    proc.connect(ctx.destination);
    status("recording 3 s…");
    await new Promise((r) => setTimeout(r, 3000));
    proc.disconnect(); src.disconnect();
    stream.getTracks().forEach((t) => t.stop());
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const all = new Float32Array(total);
    let off = 0;
    for (const c of chunks) { all.set(c, off); off += c.length; }
    signals.voice = encodeWav(all, ctx.sampleRate);
    await ctx.close();
    status("voice clip recorded");
    signalsState();
  } catch (err) {
    status("microphone: " + err.message, true);
  }
}

$("recommend").addEventListener("click", recommend);
$("snap").addEventListener("click", snapshot);
$("record").addEventListener("click", record);
$("clear-signals").addEventListener("click", () => {
  signals.face = null; signals.voice = null; $("mood").value = "";
  $("stated-emotion").value = ""; $("stated-intent").value = ""; signalsState();
});
$("mood").addEventListener("input", signalsState);
$("stated-emotion").addEventListener("change", signalsState);
$("stated-intent").addEventListener("change", signalsState);
$("apikey").value = localStorage.getItem("aigcrec-api-key") || "";
$("apikey").addEventListener("change", () => localStorage.setItem("aigcrec-api-key", $("apikey").value));
recommend();
