// emomusic web page: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const state = {
  point: { valence: 0.6, arousal: -0.4, label: null },
  moods: [],
  tab: "compose",
  journey: [],          // [{valence, arousal}] start, via..., target
  stroke: null,         // points of the stroke being drawn
  presets: [],
  busy: false,
  preset: null,         // the preset chosen (its journey is drawn), or null for a drawn journey
  session: null,        // last session result
  pollTimer: null,
};

// ---------------------------------------------------------------------------- helpers
function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}
const fmt = (x) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(2);
const clamp = (x) => Math.max(-1, Math.min(1, x));
const dist = (a, b) => Math.hypot(a.valence - b.valence, a.arousal - b.arousal);

async function api(path, options) {
  let res;
  try {
    res = await fetch(path, options);
  } catch (e) {
    throw new Error("the server cannot be reached");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.detail) || `HTTP ${res.status}`);
  return body;
}
const postJSON = (path, obj) => api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(obj) });

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text || "";
  s.classList.toggle("error", !!isError);
}
function setBusy(b) {
  state.busy = b;
  document.querySelectorAll("button.go").forEach((el) => { el.disabled = b; });
}
function showProgress(value, text) {
  $("progress-wrap").hidden = value === null;
  if (value !== null) { $("progress").value = value; $("progress-text").textContent = text || ""; }
}

// ---------------------------------------------------------------------------- the circle
function svgPoint(evt) {
  const svg = $("circle");
  const pt = svg.createSVGPoint();
  pt.x = evt.clientX; pt.y = evt.clientY;
  const p = pt.matrixTransform(svg.getScreenCTM().inverse());
  return { valence: clamp(p.x), arousal: clamp(-p.y) };
}

function nearestMoods(p, n) {
  return state.moods.slice().sort((a, b) => dist(a, p) - dist(b, p)).slice(0, n);
}

function setPoint(p, label) {
  state.point = { valence: clamp(p.valence), arousal: clamp(p.arousal), label: label || null };
  drawPoint();
}

function drawPoint() {
  const p = state.point;
  const c = $("point");
  c.setAttribute("cx", p.valence); c.setAttribute("cy", p.arousal);
  const near = nearestMoods(p, 3);
  $("va").textContent = `valence ${fmt(p.valence)}, arousal ${fmt(p.arousal)}`;
  $("nearest").textContent = near.length ? "near: " + near.map((m) => m.word).join(", ") : "";
  const lab = $("point-label");
  lab.textContent = p.label || (near[0] ? near[0].word : "");
  lab.setAttribute("x", p.valence); lab.setAttribute("y", -p.arousal - 0.09);
  document.querySelectorAll("#mood-dots .mood").forEach((d) => d.classList.remove("near"));
  near.forEach((m) => { const d = document.getElementById("mood-" + m.word); if (d) d.classList.add("near"); });
  $("circle").setAttribute("aria-valuetext", $("va").textContent + ". " + $("nearest").textContent);
}

function showMeasured(m) {
  const c = $("measured"), l = $("measured-link");
  if (!m) { c.setAttribute("visibility", "hidden"); l.setAttribute("visibility", "hidden"); return; }
  c.setAttribute("cx", m.valence); c.setAttribute("cy", m.arousal); c.setAttribute("visibility", "visible");
  l.setAttribute("x1", state.point.valence); l.setAttribute("y1", state.point.arousal);
  l.setAttribute("x2", m.valence); l.setAttribute("y2", m.arousal); l.setAttribute("visibility", "visible");
}

function drawMoodDots() {
  const g = $("mood-dots");
  g.textContent = "";
  for (const m of state.moods) {
    const d = svgEl("circle", { cx: m.valence, cy: m.arousal, r: 0.018, class: "mood", id: "mood-" + m.word }, g);
    svgEl("title", {}, d).textContent = `${m.word} (${fmt(m.valence)}, ${fmt(m.arousal)})`;
  }
}

// Ramer-Douglas-Peucker: a drawn stroke becomes start, a few waypoints at its bends, target.
function simplify(points, eps) {
  if (points.length < 3) return points.slice();
  const a = points[0], b = points[points.length - 1];
  let best = -1, idx = 0;
  const L = Math.hypot(b.valence - a.valence, b.arousal - a.arousal) || 1e-9;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i];
    const d = Math.abs((b.valence - a.valence) * (a.arousal - p.arousal) - (a.valence - p.valence) * (b.arousal - a.arousal)) / L;
    if (d > best) { best = d; idx = i; }
  }
  if (best <= eps) return [a, b];
  const left = simplify(points.slice(0, idx + 1), eps), right = simplify(points.slice(idx), eps);
  return left.slice(0, -1).concat(right);
}
function journeyFromStroke(points) {
  let eps = 0.12, out = simplify(points, eps);
  while (out.length > 6 && eps < 2) { eps *= 1.5; out = simplify(points, eps); }  // start + <= 4 via + target
  return out.map((p) => ({ valence: +p.valence.toFixed(3), arousal: +p.arousal.toFixed(3) }));
}

function drawJourney() {
  const g = $("journey");
  g.textContent = "";
  if (state.stroke && state.stroke.length > 1) {
    svgEl("polyline", { class: "stroke", points: state.stroke.map((p) => `${p.valence},${p.arousal}`).join(" ") }, g);
  }
  const j = state.journey;
  if (j.length > 1) svgEl("polyline", { class: "journey", points: j.map((p) => `${p.valence},${p.arousal}`).join(" ") }, g);
  j.forEach((p, i) => svgEl("circle", { cx: p.valence, cy: p.arousal, r: i === 0 || i === j.length - 1 ? 0.045 : 0.032,
                                        class: "node" + (i === 0 ? " start" : "") }, g));
  const names = (p) => { const n = nearestMoods(p, 1)[0]; return `${n ? n.word : ""} (${fmt(p.valence)}, ${fmt(p.arousal)})`; };
  let text = "";
  if (j.length === 1) text = "Start: " + names(j[0]) + ". Now the target.";
  else if (j.length > 1) text = "Journey: " + j.map(names).join(" → ");
  $("journey-text").textContent = text;
}

function clearTrajectory() { $("trajectory").textContent = ""; }

function drawTrajectory(plan, measured, current) {
  const g = $("trajectory");
  g.textContent = "";
  if (!plan || !plan.length) return;
  svgEl("polyline", { class: "planned", points: plan.map((c) => `${c.target.valence},${c.target.arousal}`).join(" ") }, g);
  plan.forEach((c) => svgEl("circle", { cx: c.target.valence, cy: c.target.arousal, r: 0.016, class: "clip-dot" }, g));
  (measured || []).forEach((c) => {
    if (c.measured) svgEl("circle", { cx: c.measured.valence, cy: c.measured.arousal, r: 0.022, class: "clip-measured" }, g);
  });
  if (current != null && plan[current]) {
    const c = plan[current];
    svgEl("circle", { cx: c.target.valence, cy: c.target.arousal, r: 0.06, class: "clip-current", id: "clip-current" }, g);
  }
}

function onCircleDown(evt) {
  if (state.busy && state.tab === "session") return;
  evt.preventDefault();
  $("circle").setPointerCapture(evt.pointerId);
  const p = svgPoint(evt);
  if (state.tab === "session") {
    state.stroke = [p];
    state.strokeMoved = false;
    drawJourney();
  } else {
    setPoint(p);
    state.dragging = true;
    $("mood-search").value = ""; state.searched = null;  // the word no longer names the point
  }
}
function onCircleMove(evt) {
  const p = svgPoint(evt);
  if (state.tab === "session" && state.stroke) {
    const last = state.stroke[state.stroke.length - 1];
    if (dist(last, p) > 0.01) { state.stroke.push(p); if (dist(state.stroke[0], p) > 0.06) state.strokeMoved = true; }
    drawJourney();
  } else if (state.dragging) {
    setPoint(p);
  }
}
function onCircleUp(evt) {
  if (state.tab === "session" && state.stroke) {
    const stroke = state.stroke;
    state.stroke = null;
    setPreset(null);
    if (state.strokeMoved) {
      state.journey = journeyFromStroke(stroke);
    } else {  // a click adds a point: start, then waypoints, the last one is the target
      if (state.journey.length >= 6) state.journey = [];
      state.journey.push({ valence: +stroke[0].valence.toFixed(3), arousal: +stroke[0].arousal.toFixed(3) });
    }
    clearTrajectory();
    drawJourney();
  }
  state.dragging = false;
}
function onCircleKey(evt) {
  const step = evt.shiftKey ? 0.2 : 0.05;
  const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[evt.key];
  if (d) {
    evt.preventDefault();
    setPoint({ valence: state.point.valence + d[0], arousal: state.point.arousal + d[1] });
  } else if (evt.key === "Enter" || evt.key === " ") {
    evt.preventDefault();
    if (state.tab === "session") {  // the keyboard way to draw a journey: add the point
      if (state.journey.length >= 6) state.journey = [];
      state.journey.push({ valence: +state.point.valence.toFixed(3), arousal: +state.point.arousal.toFixed(3) });
      setPreset(null);
      drawJourney();
    } else {
      const form = $("form-" + state.tab);
      if (form) form.requestSubmit();
    }
  }
}

// ---------------------------------------------------------------------------- tabs
const TABS = ["compose", "melody", "session", "analyze"];
function selectTab(name, focus) {
  state.tab = name;
  for (const t of TABS) {
    const tab = $("tab-" + t), panel = $("panel-" + t);
    const on = t === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
  }
  if (focus) $("tab-" + name).focus();
  $("circle-hint").textContent = name === "session"
    ? "Drag on the circle to draw the journey (Enter adds the keyboard point)."
    : "Click or drag on the circle to choose an emotion; arrow keys move it.";
  document.body.classList.toggle("session-mode", name === "session");
  $("legend").hidden = name !== "session";
  $("journey").style.display = name === "session" ? "" : "none";
  $("trajectory").style.display = name === "session" ? "" : "none";
}
function onTabKey(evt) {
  const i = TABS.indexOf(state.tab);
  let j = null;
  if (evt.key === "ArrowRight") j = (i + 1) % TABS.length;
  else if (evt.key === "ArrowLeft") j = (i + TABS.length - 1) % TABS.length;
  else if (evt.key === "Home") j = 0;
  else if (evt.key === "End") j = TABS.length - 1;
  if (j !== null) { evt.preventDefault(); selectTab(TABS[j], true); }
}

// ---------------------------------------------------------------------------- results
function pianoRoll(roll) {
  const canvas = document.createElement("canvas");
  const notes = roll.notes || [];
  const beats = Math.max(roll.beats || 1, 1);
  let lo = 127, hi = 0;
  for (const n of notes) { lo = Math.min(lo, n[2]); hi = Math.max(hi, n[2]); }
  if (hi < lo) { lo = 48; hi = 84; }
  lo -= 2; hi += 2;
  const pxBeat = Math.max(12, Math.min(40, 900 / beats)), rowH = Math.max(3, Math.min(8, 260 / (hi - lo + 1)));
  const W = Math.ceil(beats * pxBeat) + 2, H = Math.ceil((hi - lo + 1) * rowH) + 2;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = W * dpr; canvas.height = H * dpr;
  canvas.style.width = W + "px"; canvas.style.height = H + "px";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `piano roll: ${notes.length} notes over ${beats.toFixed(0)} beats`);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.fillStyle = "#fbfaf7"; ctx.fillRect(0, 0, W, H);
  for (let p = lo; p <= hi; p++) if ([1, 3, 6, 8, 10].includes(p % 12)) { ctx.fillStyle = "#f0eee8"; ctx.fillRect(0, H - (p - lo + 1) * rowH, W, rowH); }
  const bpb = roll.beats_per_bar || 4;
  for (let b = 0; b <= beats; b += bpb) { ctx.fillStyle = "#d5d2c8"; ctx.fillRect(b * pxBeat, 0, 1, H); }
  const colours = ["#2f6fb2", "#c2410c", "#15803d", "#7c3aed"];
  for (const [start, dur, pitch, vel, track] of notes) {
    ctx.globalAlpha = 0.45 + 0.55 * (vel / 127);
    ctx.fillStyle = colours[track % colours.length];
    ctx.fillRect(start * pxBeat + 1, H - (pitch - lo + 1) * rowH, Math.max(2, dur * pxBeat - 1), rowH - 0.5);
  }
  ctx.globalAlpha = 1;
  return canvas;
}

function showDownloads(files, names) {
  const d = $("downloads");
  d.textContent = "";
  for (const [key, label] of names) {
    if (!files[key]) continue;
    const a = document.createElement("a");
    a.href = files[key]; a.textContent = label; a.setAttribute("download", ""); a.dataset.kind = key;
    d.appendChild(a);
  }
}

function showAttributes(m, extra) {
  const t = $("attrs");
  t.textContent = "";
  const a = m.attributes || {};
  const rows = [
    ["estimated emotion", `valence ${fmt(m.valence)}, arousal ${fmt(m.arousal)} (${m.quadrant})`],
    ["nearest moods", (m.nearest_moods || []).join(", ")],
    ["key", a.key || ""],
    ["tempo", a.tempo_bpm != null ? `${a.tempo_bpm.toFixed(0)} BPM` : ""],
    ["register", a.register != null ? `mean MIDI pitch ${a.register.toFixed(1)}` : ""],
    ["density", a.note_density != null ? `${a.note_density.toFixed(2)} notes/beat` : ""],
    ["loudness", a.velocity != null ? `mean velocity ${a.velocity.toFixed(0)}` : ""],
    ["articulation", a.articulation != null ? a.articulation.toFixed(2) : ""],
    ["length", m.seconds != null ? `${m.seconds.toFixed(1)} s, ${m.notes} notes` : ""],
  ].concat(extra || []);
  for (const [k, v] of rows) {
    if (v === "" || v == null) continue;
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = k;
    const td = document.createElement("td"); td.textContent = v;
    tr.append(th, td); t.appendChild(tr);
  }
}

function resetResult() {
  $("result").hidden = true;
  $("clips").hidden = true;
  $("clips").textContent = "";
  $("picture").textContent = "";
  $("downloads").textContent = "";
  $("attrs").textContent = "";
  const pl = $("player");
  pl.pause(); pl.removeAttribute("src"); pl.load(); pl.hidden = false;
  pl.ontimeupdate = null;
  showMeasured(null);
  showProgress(null);
}

function showPieceResult(r, kind) {
  resetResult();
  $("result").hidden = false;
  $("player").src = r.files.wav;
  const pic = $("picture");
  if (r.files.svg) {
    const img = document.createElement("img");
    img.src = r.files.svg; img.alt = "sheet music of the melody";
    pic.appendChild(img);
  } else {
    pic.appendChild(pianoRoll(r.roll));
  }
  showDownloads(r.files, [["midi", "MIDI"], ["musicxml", "MusicXML"], ["abc", "ABC"], ["wav", "WAV"], ["svg", "SVG"]]);
  const extra = kind === "melody" && r.template ? [["melody template", `${r.template.key} ${r.template.mode}, ${r.template.meter}, ${r.template.tempo_bpm} BPM, ${r.template.dynamic}`]] : [];
  showAttributes(r.measured, extra);
  showMeasured(r.measured);
}

// ---------------------------------------------------------------------------- actions
function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.type === "file") continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.value.trim() !== "") out[el.name] = el.type === "number" ? Number(el.value) : el.value.trim();
  }
  return out;
}

async function generate(kind, evt) {
  evt.preventDefault();
  if (state.busy) return;
  const body = Object.assign(formValues(evt.target), { valence: +state.point.valence.toFixed(4), arousal: +state.point.arousal.toFixed(4) });
  resetResult();
  setBusy(true); setStatus(kind === "compose" ? "Composing…" : "Writing a melody…");
  try {
    const t0 = performance.now();
    const r = await postJSON("/api/" + kind, body);
    showPieceResult(r, kind);
    setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s. Estimated emotion drawn as the ring on the circle.`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    setBusy(false);
  }
}

async function analyzeFile(evt) {
  evt.preventDefault();
  if (state.busy) return;
  const input = evt.target.elements.file;
  if (!input.files.length) { setStatus("choose a file first", true); return; }
  const fd = new FormData();
  fd.append("file", input.files[0]);
  setBusy(true); setStatus("Analyzing…");
  try {
    const r = await api("/api/analyze", { method: "POST", body: fd });
    resetResult();
    $("result").hidden = false;
    $("player").hidden = true;
    $("picture").appendChild(pianoRoll(r.roll));
    showAttributes(r, [["file", r.file], ["format", r.format]]);
    setPoint({ valence: r.valence, arousal: r.arousal }, (r.nearest_moods || [])[0]);
    showMeasured(r);
    setStatus(`${r.file}: valence ${fmt(r.valence)}, arousal ${fmt(r.arousal)} (${r.quadrant}).`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    setBusy(false);
  }
}

async function buildSession(evt) {
  evt.preventDefault();
  if (state.busy) return;
  const v = formValues(evt.target);
  const body = { minutes: v.minutes, clip_seconds: v.clip_seconds, backend: v.backend, seed: v.seed };
  if (state.preset) body.preset = state.preset;
  else {
    if (state.journey.length < 2) { setStatus("draw a journey on the circle first (or pick a preset)", true); return; }
    const j = state.journey;
    body.start = j[0]; body.target = j[j.length - 1];
    if (j.length > 2) body.via = j.slice(1, -1);
  }
  resetResult(); clearTrajectory();
  setBusy(true); setStatus("Planning the session…"); showProgress(0, "queued");
  try {
    const started = await postJSON("/api/session", body);
    drawTrajectory(started.plan, [], null);
    setStatus(`Building ${started.clips} clips (${started.minutes} min)…`);
    const job = await pollJob(started.url);
    showSessionResult(job.result, started.plan);
    setStatus(`Session ready: ${job.result.clips.length} clips, backend ${job.result.backend}.`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    setBusy(false);
  }
}

function pollJob(url) {
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        const j = await api(url);
        showProgress(j.progress, `${Math.round(j.progress * 100)} % · ${j.message}`);
        if (j.state === "done") { showProgress(1, "100 % · done"); resolve(j); return; }
        if (j.state === "failed" || j.state === "cancelled") { reject(new Error(j.error || j.state)); return; }
        state.pollTimer = setTimeout(tick, 400);
      } catch (e) { reject(e); }
    };
    tick();
  });
}

function currentClip(clips, t) {
  for (let i = clips.length - 1; i >= 0; i--) if (t >= clips[i].start_s) return i;
  return 0;
}

function showSessionResult(r, plan) {
  state.session = r;
  resetResult();
  showProgress(1, "100 % · done");
  $("result").hidden = false;
  const pl = $("player");
  pl.src = r.files.session_wav;
  const list = $("clips");
  list.hidden = false;
  r.clips.forEach((c, i) => {
    const li = document.createElement("li");
    const m = c.measured ? ` · measured ${fmt(c.measured.valence)}, ${fmt(c.measured.arousal)}` : "";
    li.textContent = `${c.title}${m}`;
    li.tabIndex = 0;
    li.id = "clip-" + i;
    const seek = () => { pl.currentTime = c.start_s + 0.01; pl.play().catch(() => {}); };
    li.onclick = seek;
    li.onkeydown = (e) => { if (e.key === "Enter") seek(); };
    list.appendChild(li);
  });
  let cur = -1;
  const highlight = () => {
    const i = currentClip(r.clips, pl.currentTime);
    if (i === cur) return;
    cur = i;
    list.querySelectorAll("li").forEach((li, k) => li.classList.toggle("current", k === i));
    drawTrajectory(r.clips, r.clips, i);
  };
  pl.ontimeupdate = highlight;
  highlight();
  showDownloads(r.files, [["session_wav", "session.wav"], ["session_mid", "session.mid"], ["playlist", "playlist"],
                          ["trajectory", "trajectory.png"], ["plan", "plan.json"], ["zip", "zip of the folder"]]);
  const adh = r.adherence || {};
  const t = $("attrs");
  t.textContent = "";
  const rows = [["length", `${Math.floor(r.duration_s / 60)}:${String(Math.round(r.duration_s % 60)).padStart(2, "0")}`],
                ["backend", r.backend], ["estimator", r.estimator]];
  if (adh.mean_distance != null) rows.push(["planned vs measured", `mean distance ${adh.mean_distance.toFixed(2)}, max ${adh.max_distance.toFixed(2)}`]);
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = k;
    const td = document.createElement("td"); td.textContent = v || "";
    tr.append(th, td); t.appendChild(tr);
  }
}

function setPreset(name) {
  state.preset = name;
  document.querySelectorAll("#preset-list button").forEach((b) => b.setAttribute("aria-pressed", b.dataset.name === name ? "true" : "false"));
}

function applyPreset(name) {
  const p = state.presets.find((x) => x.name === name);
  if (!p) return;
  setPreset(name);
  state.journey = [p.start].concat(p.via || [], [p.target]).map((e) => ({ valence: e.valence, arousal: e.arousal }));
  if (p.minutes) $("form-session").elements.minutes.value = Math.min(60, p.minutes);
  clearTrajectory();
  drawJourney();
}

function onMoodSearch() {
  const word = $("mood-search").value.trim().toLowerCase();
  if (!word || word === state.searched) return;  // "change" also fires on blur: apply a word once
  const m = state.moods.find((x) => x.word === word);
  if (m) {
    state.searched = word;
    setPoint(m, m.word);
    setStatus(`${m.word}: valence ${fmt(m.valence)}, arousal ${fmt(m.arousal)}`);
  }
}

// ---------------------------------------------------------------------------- start
async function init() {
  const circle = $("circle");
  circle.addEventListener("pointerdown", onCircleDown);
  circle.addEventListener("pointermove", onCircleMove);
  circle.addEventListener("pointerup", onCircleUp);
  circle.addEventListener("pointercancel", onCircleUp);
  circle.addEventListener("keydown", onCircleKey);
  for (const t of TABS) $("tab-" + t).addEventListener("click", () => selectTab(t));
  $("tabs").addEventListener("keydown", onTabKey);
  $("form-compose").addEventListener("submit", (e) => generate("compose", e));
  $("form-melody").addEventListener("submit", (e) => generate("melody", e));
  $("form-session").addEventListener("submit", buildSession);
  $("form-analyze").addEventListener("submit", analyzeFile);
  $("clear-journey").addEventListener("click", () => { state.journey = []; setPreset(null); clearTrajectory(); drawJourney(); });
  $("mood-search").addEventListener("change", onMoodSearch);
  $("mood-search").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); onMoodSearch(); } });
  selectTab("compose");
  drawPoint();
  try {
    const moods = await api("/api/moods");
    state.moods = moods.moods;
    const dl = $("mood-list");
    for (const m of state.moods) { const o = document.createElement("option"); o.value = m.word; dl.appendChild(o); }
    drawMoodDots();
    drawPoint();
    const presets = await api("/api/presets");
    state.presets = presets.presets;
    const list = $("preset-list");
    for (const p of state.presets) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = p.name; b.title = p.description; b.dataset.name = p.name;
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => applyPreset(p.name));
      list.appendChild(b);
    }
    document.body.dataset.ready = "1";
  } catch (e) {
    setStatus("cannot load the mood table: " + e.message, true);
  }
}
init();
