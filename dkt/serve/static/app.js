// The dkt harmonize page: place a cut-out on a painting (or pick a composite and its mask),
// send it to POST v1/harmonize and compare the result with the input. Plain browser APIs
// only, so the page works offline and needs no build step.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  mode: "paste",
  painting: null, // {file, image}
  cutout: null,
  composite: null,
  mask: null,
  scale: 1,
  strength: 1, // style strength, 0 (as pasted) to 1 (full)
  x: 0,
  y: 0,
  placed: false, // false: centred, and the server centres it (no x, y sent)
  drag: null,
  urls: [],
  busy: false,
};

// ------------------------------------------------------------------ files

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => resolve({ file, image, url });
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error(`${file.name}: the browser cannot read this image`));
    };
    image.src = url;
  });
}

async function pick(input, key) {
  const file = input.files && input.files[0];
  if (state[key]) URL.revokeObjectURL(state[key].url);
  state[key] = null;
  if (file) {
    try {
      state[key] = await loadImage(file);
    } catch (error) {
      say(error.message, "error");
    }
  }
  if (key === "painting" || key === "cutout") centre();
  draw();
  ready();
}

// ------------------------------------------------------------------ placement

function objectSize() {
  const c = state.cutout.image;
  return [Math.max(1, Math.round(c.naturalWidth * state.scale)),
          Math.max(1, Math.round(c.naturalHeight * state.scale))];
}

function centre() {
  state.placed = false;
  if (state.painting && state.cutout) {
    const [w, h] = objectSize();
    state.x = Math.floor((state.painting.image.naturalWidth - w) / 2);
    state.y = Math.floor((state.painting.image.naturalHeight - h) / 2);
  }
  showPlacement();
}

function showPlacement() {
  $("scale").value = String(state.scale);
  $("scale-value").textContent = `${state.scale.toFixed(2)}×`;
  $("x").value = state.placed ? String(state.x) : "";
  $("y").value = state.placed ? String(state.y) : "";
  if (!state.placed && state.painting && state.cutout) {
    $("x").placeholder = `${state.x} (centre)`;
    $("y").placeholder = `${state.y} (centre)`;
  }
}

function setScale(scale, anchored) {
  const before = state.cutout ? objectSize() : null;
  state.scale = Math.min(4, Math.max(0.05, scale));
  if (!state.placed) {
    centre();
  } else if (anchored && before) {  // keep the object's centre where it was
    const [w, h] = objectSize();
    state.x = Math.round(state.x + (before[0] - w) / 2);
    state.y = Math.round(state.y + (before[1] - h) / 2);
  }
  showPlacement();
  draw();
}

function canvasPoint(event) {
  const canvas = $("stage");
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * (canvas.width / box.width),
          (event.clientY - box.top) * (canvas.height / box.height)];
}

function onObject([px, py]) {
  if (!state.painting || !state.cutout || state.mode !== "paste") return false;
  const [w, h] = objectSize();
  return px >= state.x && px < state.x + w && py >= state.y && py < state.y + h;
}

// ------------------------------------------------------------------ drawing

function draw() {
  const canvas = $("stage");
  const ctx = canvas.getContext("2d");
  const base = state.mode === "paste" ? state.painting : state.composite;
  $("stage-empty").hidden = Boolean(base);
  canvas.hidden = !base;
  if (!base) return;
  canvas.width = base.image.naturalWidth;
  canvas.height = base.image.naturalHeight;
  ctx.drawImage(base.image, 0, 0);
  if (state.mode === "paste" && state.cutout) {
    const [w, h] = objectSize();
    ctx.drawImage(state.cutout.image, state.x, state.y, w, h);
    ctx.save();
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = Math.max(1, canvas.width / 400);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.strokeRect(state.x + 0.5, state.y + 0.5, w - 1, h - 1);
    ctx.strokeStyle = "rgba(0, 0, 0, 0.6)";
    ctx.lineDashOffset = 5;
    ctx.strokeRect(state.x + 0.5, state.y + 0.5, w - 1, h - 1);
    ctx.restore();
  } else if (state.mode === "composite" && state.mask) {
    ctx.save();
    ctx.globalAlpha = 0.35;
    ctx.drawImage(state.mask.image, 0, 0, canvas.width, canvas.height);
    ctx.restore();
  }
}

/** The "before" picture: the object pasted as it is, without the outline. */
function beforeImage() {
  if (state.mode === "composite") return Promise.resolve(state.composite.url);
  const canvas = document.createElement("canvas");
  canvas.width = state.painting.image.naturalWidth;
  canvas.height = state.painting.image.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(state.painting.image, 0, 0);
  const [w, h] = objectSize();
  ctx.drawImage(state.cutout.image, state.x, state.y, w, h);
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(keep(blob)), "image/png"));
}

function keep(blob) {
  const url = URL.createObjectURL(blob);
  state.urls.push(url);
  return url;
}

// ------------------------------------------------------------------ the request

function ready() {
  const inputs = state.mode === "paste" ? state.painting && state.cutout : state.composite;
  $("harmonize").disabled = state.busy || !inputs;
  if (!state.busy && !inputs) {
    say(state.mode === "paste" ? "Choose a painting and a cut-out."
                               : "Choose a composite (and its mask).");
  } else if (!state.busy && $("status").dataset.kind !== "error") {
    say("Ready: press Harmonize.");
  }
}

function say(text, kind = "info") {
  const status = $("status");
  status.textContent = text;
  status.dataset.kind = kind;
}

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function formData() {
  const form = new FormData();
  if (state.mode === "paste") {
    form.append("painting", state.painting.file, state.painting.file.name);
    form.append("cutout", state.cutout.file, state.cutout.file.name);
    form.append("scale", String(state.scale));
    if (state.placed) {
      form.append("x", String(state.x));
      form.append("y", String(state.y));
    }
  } else {
    form.append("composite", state.composite.file, state.composite.file.name);
    if (state.mask) form.append("mask", state.mask.file, state.mask.file.name);
  }
  if ($("size").value !== "") form.append("size", $("size").value);
  form.append("strength", String(state.strength));
  form.append("format", $("format").value);
  return form;
}

async function harmonize() {
  state.busy = true;
  ready();
  say("Harmonizing…", "busy");
  const started = performance.now();
  try {
    const response = await fetch("v1/harmonize", {
      method: "POST", body: formData(), headers: authHeaders(),
    });
    if (!response.ok) {
      await refused(response);
      return;
    }
    const blob = await response.blob();
    for (const url of state.urls.splice(0)) URL.revokeObjectURL(url);
    const resultUrl = keep(blob);
    $("before").src = await beforeImage();
    $("result").src = resultUrl;
    const ext = $("format").value === "jpeg" ? "jpg" : $("format").value;
    const link = $("download");
    link.href = resultUrl;
    link.download = `harmonized.${ext}`;
    link.textContent = `Download harmonized.${ext}`;
    $("result-box").hidden = false;
    reveal();
    $("result-box").scrollIntoView({ behavior: "smooth", block: "nearest" });
    const seconds = (performance.now() - started) / 1000;
    const model = response.headers.get("X-DKT-Seconds-Model");
    const backend = response.headers.get("X-DKT-Backend");
    $("timing").textContent = `${seconds.toFixed(2)} s` +
      (model ? ` (model ${Number(model).toFixed(2)} s, ${backend})` : "");
    say("Done.", "ok");
  } catch (error) {
    say(`Could not reach the server: ${error.message}`, "error");
  } finally {
    state.busy = false;
    $("harmonize").disabled = false;
  }
}

async function refused(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch (_) { /* not JSON: keep the status line */ }
  if (response.status === 401) {
    $("token-row").hidden = false;
    $("token").focus();
  }
  const retry = response.headers.get("Retry-After");
  say(`Error ${response.status}: ${message}` + (retry ? ` (retry in ${retry} s)` : ""), "error");
}

async function describeServer() {
  try {
    const response = await fetch("v1/model", { headers: authHeaders() });
    if (response.status === 401) {
      $("token-row").hidden = false;
      $("model-info").textContent = "This server needs a token.";
      return;
    }
    if (!response.ok) return;
    const model = await response.json();
    $("model-info").textContent =
      `Model ${model.name} · ${model.backend} on ${model.device} · working size ${model.working_size}`;
    if (model.strength) {
      setStrength(model.strength.default);
      $("strength").disabled = !model.strength.adjustable;
      if (!model.strength.adjustable) $("strength-hint").textContent = model.strength.note;
    }
  } catch (_) { /* the page still works; the request will say what is wrong */ }
}

// ------------------------------------------------------------------ style strength

function setStrength(value) {
  state.strength = Math.min(1, Math.max(0, Number(value)));
  $("strength").value = String(state.strength);
  $("strength-value").textContent = state.strength.toFixed(2);
}

// ------------------------------------------------------------------ before / after

function reveal() {
  const percent = Number($("reveal").value);
  $("result").style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
  $("divider").style.left = `${percent}%`;
}

// ------------------------------------------------------------------ wiring

function setMode(mode) {
  state.mode = mode;
  $("paste-inputs").hidden = mode !== "paste";
  $("composite-inputs").hidden = mode !== "composite";
  $("status").dataset.kind = "";
  draw();
  ready();
}

function wire() {
  $("mode-paste").addEventListener("change", () => setMode("paste"));
  $("mode-composite").addEventListener("change", () => setMode("composite"));
  for (const key of ["painting", "cutout", "composite", "mask"]) {
    $(key).addEventListener("change", (event) => {
      $("status").dataset.kind = "";
      pick(event.target, key);
    });
  }
  $("scale").addEventListener("input", (event) => setScale(Number(event.target.value), true));
  for (const axis of ["x", "y"]) {
    $(axis).addEventListener("input", (event) => {
      if (event.target.value === "" || !state.cutout) return;
      state[axis] = Math.round(Number(event.target.value));
      if (!state.placed) {
        state.placed = true;
        showPlacement();
      }
      draw();
    });
  }
  $("centre").addEventListener("click", () => { centre(); draw(); });
  $("strength").addEventListener("input", (event) => setStrength(event.target.value));
  const canvas = $("stage");
  canvas.addEventListener("pointerdown", (event) => {
    const point = canvasPoint(event);
    if (!onObject(point)) return;
    state.drag = { from: point, x: state.x, y: state.y };
    canvas.setPointerCapture(event.pointerId);
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", (event) => {
    const point = canvasPoint(event);
    if (!state.drag) {
      canvas.classList.toggle("movable", onObject(point));
      return;
    }
    state.x = Math.round(state.drag.x + point[0] - state.drag.from[0]);
    state.y = Math.round(state.drag.y + point[1] - state.drag.from[1]);
    state.placed = true;
    showPlacement();
    draw();
  });
  const stop = () => { state.drag = null; canvas.classList.remove("dragging"); };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  canvas.addEventListener("wheel", (event) => {
    if (!onObject(canvasPoint(event))) return;
    event.preventDefault();
    setScale(state.scale * Math.exp(-event.deltaY * 0.0015), true);
  }, { passive: false });
  $("reveal").addEventListener("input", reveal);
  $("harmonize").addEventListener("click", harmonize);
  $("token").addEventListener("change", describeServer);
  draw();
  ready();
  describeServer();
}

wire();
