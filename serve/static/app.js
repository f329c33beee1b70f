// labral clinician page: upload a clip, play it, show score, relevance strip and key frames.
// Plain JS, no build step. `?sample=/samples/<name>` scores a sample served by this server
// (used by the headless-browser test and for demos).
"use strict";

const $ = (id) => document.getElementById(id);
let playTimer = null;

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function score(blob, name) {
  const form = new FormData();
  form.append("file", blob, name || "clip");
  const headers = authHeaders();
  setStatus("Scoring " + (name || "clip") + " ...");
  document.body.dataset.state = "scoring";
  const response = await fetch("/v1/predictions?preview=true&spatial=true", {
    method: "POST", body: form, headers,
  });
  const body = await response.json();
  if (!response.ok) {
    const err = body.error || { code: "http_" + response.status, message: response.statusText };
    setStatus("Could not score: " + err.message + " [" + err.code + "]", true);
    document.body.dataset.state = "error";
    document.body.dataset.errorCode = err.code;
    return;
  }
  render(body);
  setStatus(body.status === "not_assessable"
    ? "Not assessable (checked in " + body.timing_ms.total.toFixed(0) + " ms): see why below."
    : "Scored in " + body.timing_ms.total.toFixed(0) + " ms.");
  document.body.dataset.state = "done";
  loadRecent();
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function loadRecent() {
  // GET /v1/results: the newest stored results (needs the API key when the server has one)
  const table = $("recent-results");
  const response = await fetch("/v1/results?limit=10", { headers: authHeaders() });
  if (!response.ok) { table.dataset.state = "unavailable"; return; }
  const page = await response.json();
  const cells = (r) => [
    r.created_at.replace("T", " ").slice(0, 19), r.source,
    r.probability === null ? "-" : (100 * r.probability).toFixed(1) + " %",
    r.status === "failed" ? "failed: " + r.reason
      : r.status === "not_assessable"
        ? "not assessable: " + r.reasons.map((code) => code.replace(/_/g, " ")).join(", ")
      : (r.decision ? "detachment suggested" : "no detachment suggested"),
    (r.instance_key || "-").slice(0, 12),
  ];
  table.tBodies[0].replaceChildren(...page.results.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.decision = String(r.decision);
    tr.dataset.status = r.status;
    for (const text of cells(r)) {
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }
    return tr;
  }));
  table.dataset.rows = String(page.results.length);
  table.dataset.total = String(page.total);
}

function relevanceColor(value) {
  const v = Math.max(0, Math.min(1, value));
  return "rgb(" + Math.round(40 + 215 * v) + "," + Math.round(40 + 150 * v * v) + ",40)";
}

function drawTimeline(relevance, current) {
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  const n = relevance.length;
  const w = canvas.width / Math.max(n, 1);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  relevance.forEach((value, i) => {
    ctx.fillStyle = relevanceColor(value);
    const h = canvas.height * (0.25 + 0.75 * value);
    ctx.fillRect(i * w, canvas.height - h, Math.max(w - 0.5, 1), h);
  });
  if (current !== null) {
    ctx.fillStyle = "#fff";
    ctx.fillRect((current + 0.5) * w - 1, 0, 2, canvas.height);
  }
  canvas.dataset.bars = String(n);
}

function play(preview, relevance) {
  if (playTimer) clearInterval(playTimer);
  const canvas = $("player");
  const ctx = canvas.getContext("2d");
  const images = preview.frames.map((png) => {
    const img = new Image();
    img.src = "data:image/png;base64," + png;
    return img;
  });
  let i = 0;
  const draw = () => {
    const img = images[i];
    if (img.complete && img.naturalWidth) {
      canvas.height = Math.round(canvas.width * img.naturalHeight / img.naturalWidth);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    }
    drawTimeline(relevance, preview.frame_index[i]);
    i = (i + 1) % images.length;
  };
  draw();
  playTimer = setInterval(draw, 1000 / Math.max(1, Math.min(preview.fps, 60)));
}

function drawSpatialMap(canvas, img, map) {
  // The key frame with the spatial map (|d logit / d image| at model input size, in [0, 1])
  // laid over it in a warm colour; the map's maximum is ringed.
  const w = img.naturalWidth, h = img.naturalHeight;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, w, h);
  const [mh, mw] = map.size;
  const cw = w / mw, ch = h / mh;
  let best = [0, 0, -1];
  map.values.forEach((row, r) => row.forEach((v, c) => {
    if (v > best[2]) best = [r, c, v];
    if (v < 0.2) return;
    ctx.fillStyle = "rgba(255," + Math.round(200 * (1 - v)) + ",0," + (0.55 * v).toFixed(3) + ")";
    ctx.fillRect(c * cw, r * ch, Math.ceil(cw), Math.ceil(ch));
  }));
  ctx.strokeStyle = "#00ff66"; ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc((best[1] + 0.5) * cw, (best[0] + 0.5) * ch, 6, 0, 2 * Math.PI);
  ctx.stroke();
  canvas.dataset.peak = best[0] + "," + best[1];
}

function renderVerdict(body) {
  // A clip the input check refused: "Not assessable", its reasons in words and what to do;
  // no probability, decision or relevance strip (the answer has none).
  const refused = body.status === "not_assessable";
  document.body.dataset.verdict = body.status;
  $("not-assessable").hidden = !refused;
  for (const id of ["score-row", "timeline", "timeline-caption", "evidence"]) {
    $(id).hidden = refused;
  }
  const check = body.input_check;
  $("reasons").replaceChildren(...(refused ? check.reasons : []).map((code, i) => {
    const li = document.createElement("li");
    li.dataset.reason = code;
    li.textContent = check.reason_titles[i] || code;
    return li;
  }));
  $("advice").textContent = refused ? check.advice : "";
  return refused;
}

function render(body) {
  $("result").hidden = false;
  if (renderVerdict(body)) {
    renderClip(body);
    if (body.preview) play(body.preview, []);
    return;
  }
  $("probability").textContent = (100 * body.probability).toFixed(1) + " %";
  $("threshold").textContent = (100 * body.threshold).toFixed(1) + " %";
  const decision = $("decision");
  decision.textContent = body.decision ? "detachment suggested" : "no detachment suggested";
  decision.className = "decision " + (body.decision ? "positive" : "negative");
  decision.dataset.decision = String(body.decision);
  renderClip(body);
  renderEvidence(body);
}

function renderClip(body) {
  // the clip's facts, the warnings and the model, whatever the verdict
  const facts = $("facts");
  facts.replaceChildren();
  const c = body.clip;
  const rows = [["frames", c.frames], ["frame rate", c.fps + " fps"],
    ["duration", c.duration_s + " s"], ["region", c.region_size.join(" x ") + " px"],
    ["pixel spacing", c.spacing_mm ? c.spacing_mm.map((v) => v.toFixed(3)).join(" x ") + " mm"
      : "unknown"]];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    facts.append(dt, dd);
  }
  const warnings = $("warnings");
  warnings.replaceChildren(...body.warnings.map((text) => {
    const li = document.createElement("li"); li.textContent = text; return li;
  }));
  $("model").textContent = "Model " + body.model.name + " " + body.model.version +
    " (SHA-256 " + body.model.sha256 + ")";
}

function renderEvidence(body) {
  // key frames with their spatial maps, the clip playing over the relevance strip
  const c = body.clip;
  const keys = $("key-frames");
  keys.replaceChildren();
  const maps = new Map((body.spatial_maps || []).map((m) => [m.frame, m]));
  if (body.preview) {
    for (const kf of body.preview.key_frames) {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = "data:image/png;base64," + kf.png;
      img.alt = "key frame " + kf.frame;
      const cap = document.createElement("figcaption");
      const t = kf.frame / c.fps;
      cap.textContent = "frame " + kf.frame + " (" + t.toFixed(2) + " s), relevance " +
        body.relevance[kf.frame].toFixed(2);
      const map = maps.get(kf.frame);
      if (map) {  // where in the frame the evidence lies, drawn once the frame has loaded
        const canvas = document.createElement("canvas");
        canvas.className = "spatial-map";
        canvas.dataset.frame = String(kf.frame);
        img.addEventListener("load", () => { drawSpatialMap(canvas, img, map); img.hidden = true; });
        fig.append(img, canvas, cap);
        cap.textContent += "; evidence map overlaid (ring: its maximum)";
      } else {
        fig.append(img, cap);
      }
      keys.append(fig);
    }
    play(body.preview, body.relevance);
  } else {
    drawTimeline(body.relevance, null);
  }
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) { setStatus("Choose a clip first.", true); return; }
  score(file, file.name).catch((e) => setStatus("Request failed: " + e, true));
});

loadRecent().catch(() => {});
$("api-key").addEventListener("change", () => loadRecent().catch(() => {}));

const sample = new URLSearchParams(location.search).get("sample");
if (sample && sample.startsWith("/samples/")) {
  fetch(sample)
    .then((r) => { if (!r.ok) throw new Error("sample " + r.status); return r.blob(); })
    .then((blob) => score(blob, sample.split("/").pop()))
    .catch((e) => setStatus("Request failed: " + e, true));
}
