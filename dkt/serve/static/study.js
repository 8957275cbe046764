// The study page: one trial at a time, answered by arrow keys or buttons.
//
// The page never knows which method is which: the server hands out a trial token and two
// image URLs, and the page answers with the side chosen. The response time is counted from
// the moment both pictures are on screen, so a slow network does not look like hesitation.
// Input is ignored while a trial is loading or an answer is being saved, so a key held down
// or pressed twice can never answer a trial the rater has not seen.
"use strict";

(() => {
  const STORAGE_KEY = "dkt-study-rater";
  const RATER = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$/;
  const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "tie" };
  const RETRY_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  let rater = null;
  let current = null; // the trial on screen: {trial, position, total, left, right}
  let shownAt = 0;

  function setState(state) {
    body.dataset.state = state;
    for (const button of document.querySelectorAll("button.choose")) {
      button.disabled = state !== "ready";
    }
  }

  function show(id) {
    for (const section of ["rater-form", "trial", "done"]) {
      $(section).hidden = section !== id;
    }
  }

  function message(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function progress(position, total) {
    $("progress").textContent = `${position} / ${total}`;
  }

  async function api(path, options) {
    const response = await fetch(path, {
      ...options,
      headers: { "Content-Type": "application/json" },
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, data };
  }

  function loadImage(img, url) {
    return new Promise((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error(`could not load ${url}`));
      img.src = url;
    });
  }

  async function next() {
    setState("loading");
    let answer;
    try {
      answer = await api(`/v1/study/next?rater=${encodeURIComponent(rater)}`);
    } catch (_) {
      message("Cannot reach the study server; your answers so far are saved. Retrying…");
      setTimeout(next, RETRY_MS);
      return;
    }
    if (answer.status !== 200 || !answer.data) {
      message(`The server refused: ${detail(answer)}`);
      return;
    }
    message("");
    const data = answer.data;
    if (data.done) {
      current = null;
      body.dataset.trial = "";
      progress(data.answered, data.total);
      $("done-text").textContent = `You answered all ${data.total} comparisons.`;
      show("done");
      setState("done");
      return;
    }
    current = data;
    show("trial");
    progress(data.position, data.total);
    try {
      await Promise.all([loadImage($("left-img"), data.left), loadImage($("right-img"), data.right)]);
    } catch (err) {
      message(`${err.message}; retrying…`);
      setTimeout(next, RETRY_MS);
      return;
    }
    body.dataset.trial = data.trial;
    shownAt = performance.now();
    setState("ready");
  }

  function detail(answer) {
    const d = answer.data && answer.data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d) && d.length) return d.map((e) => e.msg).join("; ");
    return `HTTP ${answer.status}`;
  }

  async function choose(choice) {
    if (body.dataset.state !== "ready" || !current) return;
    const ms = Math.max(0, Math.round(performance.now() - shownAt));
    setState("saving");
    let answer;
    try {
      answer = await api("/v1/study/judgment", {
        method: "POST",
        body: JSON.stringify({ rater, trial: current.trial, choice, ms }),
      });
    } catch (_) {
      message("Your answer could not be sent (no connection). Please answer again.");
      setState("ready");
      return;
    }
    if (answer.status === 200 || answer.status === 409 || answer.status === 404) {
      // 409: already saved (a retry); 404: the server restarted and this trial's token is
      // gone. Either way the server knows what is next.
      next();
      return;
    }
    message(`Your answer was not saved: ${detail(answer)}. Please answer again.`);
    setState("ready");
  }

  function start(id) {
    rater = id;
    localStorage.setItem(STORAGE_KEY, id);
    $("rater-name").textContent = id;
    $("rater-label").hidden = false;
    next();
  }

  function askRater() {
    current = null;
    body.dataset.trial = "";
    $("rater-label").hidden = true;
    $("progress").textContent = "";
    show("rater-form");
    setState("rater");
    $("rater-input").value = rater || "";
    $("rater-input").focus();
  }

  document.addEventListener("keydown", (event) => {
    const choice = KEYS[event.key];
    if (!choice || body.dataset.state === "rater") return;
    event.preventDefault(); // arrows would scroll the page
    if (!event.repeat) choose(choice);
  });

  for (const button of document.querySelectorAll("button.choose")) {
    button.addEventListener("click", () => {
      button.blur();
      choose(button.dataset.choice);
    });
  }

  $("rater-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("rater-input").value.trim();
    if (!RATER.test(id)) {
      message("A rater id is letters, digits and _ . @ + - (starting with a letter or digit).");
      return;
    }
    message("");
    start(id);
  });

  $("change-rater").addEventListener("click", askRater);

  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && RATER.test(saved)) start(saved);
  else askRater();
})();
