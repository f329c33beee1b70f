// labral clinician page, live view: watch the live sessions (/v1/stream/watch) as frames
// arrive: the latest frame, the running score, the input check's state and a relevance
// strip that grows with the scan. `?live=1` starts watching when the page opens.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const live = { session: null, values: new Map(), last: -1, socket: null };

  function setState(text, state) {
    $("live-state").textContent = text;
    if (state) $("live").dataset.checkState = state;
  }

  function drawStrip() {
    // one bar per frame so far; the newest at the right once the strip is full
    const canvas = $("live-strip");
    const ctx = canvas.getContext("2d");
    const shown = Math.max(live.last + 1, 60);
    const width = canvas.width / shown;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const [frame, value] of live.values) {
      const v = Math.max(0, Math.min(1, value));
      ctx.fillStyle = "rgb(" + Math.round(40 + 215 * v) + "," + Math.round(40 + 150 * v * v) + ",40)";
      ctx.fillRect(frame * width, 0, Math.max(1, Math.ceil(width)), canvas.height);
    }
    canvas.dataset.bars = String(live.values.size);
  }

  function showScore(probability, decision) {
    $("live-probability").textContent =
      probability === null ? "-" : (100 * probability).toFixed(1) + " %";
    const el = $("live-decision");
    el.textContent = decision === null ? "waiting"
      : (decision ? "detachment suggested" : "no detachment suggested");
    el.className = "decision" + (decision === null ? "" : decision ? " positive" : " negative");
    el.dataset.decision = String(decision);
  }

  function onOpened(m) {
    live.session = m.session; live.values.clear(); live.last = -1;
    $("live").hidden = false;
    showScore(null, null);
    setState("Live scan started (" + m.fps + " frames/s): collecting frames.", "collecting");
    drawStrip();
  }

  function onUpdate(m) {
    if (live.session === null) onOpened({ session: m.session, fps: "?" });
    if (m.session !== live.session) return; // one scan at a time: the first one watched
    live.last = m.frame;
    for (const r of m.relevance) live.values.set(r.frame, r.value);
    if (m.preview) $("live-frame").src = "data:image/png;base64," + m.preview;
    $("live-frame-index").textContent = String(m.frame);
    document.body.dataset.liveFrame = String(m.frame);
    showScore(m.probability, m.decision);
    setState(m.input_check.message.charAt(0).toUpperCase() + m.input_check.message.slice(1),
      m.input_check.state);
    drawStrip();
  }

  function onResult(m) {
    if (m.session !== live.session) return;
    const assessable = m.status === "scored";
    showScore(assessable ? m.probability : null, assessable ? m.decision : null);
    setState(m.status === "failed" ? "Scan ended without frames."
      : assessable ? "Scan ended: final result of the whole clip (stored)."
        : "Scan ended: not assessable. " + m.input_check.advice, "ended");
    document.body.dataset.live = "ended";
    live.session = null;
  }

  function watch() {
    if (live.socket) live.socket.close();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/v1/stream/watch");
    live.socket = socket;
    socket.onopen = () => {
      const key = $("api-key").value.trim();
      socket.send(JSON.stringify(key ? { type: "watch", api_key: key } : { type: "watch" }));
    };
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === "watching") {
        $("live").hidden = false;
        setState("Watching: waiting for a live scan.", "idle");
        document.body.dataset.live = "watching";
      } else if (m.type === "opened") onOpened(m);
      else if (m.type === "update") onUpdate(m);
      else if (m.type === "result") onResult(m);
      else if (m.type === "error") setState("Cannot watch: " + m.message + " [" + m.code + "]");
    };
    socket.onclose = () => { document.body.dataset.live = document.body.dataset.live || "closed"; };
  }

  $("watch-live").addEventListener("click", watch);
  if (new URLSearchParams(location.search).get("live") === "1") watch();
})();
