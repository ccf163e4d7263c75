// mockstatus browser page: the code filter and the try-it panel.
// Plain JavaScript, no build step. Everything from a response or a form field is
// written with textContent or .value, never as HTML.
"use strict";

(function () {
  document.documentElement.classList.add("js");

  const data = JSON.parse(document.getElementById("ms-data").textContent);
  const T = data.text;
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (_, key) => (key in vars ? String(vars[key]) : "{" + key + "}"));
  const BODY_LIMIT = 100000;
  const SAVED = "mockstatus.page.state";

  // --- filter ----------------------------------------------------------------------

  const search = $("q");
  const items = Array.from(document.querySelectorAll("li.code"));
  const groups = Array.from(document.querySelectorAll("section.group"));

  function matches(li, term) {
    const code = li.dataset.code;
    if (/^\d{1,3}$/.test(term)) return code.startsWith(term); // 50 -> 500..509
    if (/^\dx{1,2}$/.test(term)) return code[0] === term[0]; // 4xx -> the class
    return li.dataset.search.includes(term);
  }

  function filter() {
    const terms = search.value.toLowerCase().trim().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const li of items) {
      const ok = terms.every((term) => matches(li, term));
      li.hidden = !ok;
      if (ok) shown += 1;
    }
    for (const group of groups) group.hidden = !group.querySelector("li.code:not([hidden])");
    $("q-count").textContent = fmt(data.count, { shown: shown, total: data.total });
    $("q-none").hidden = shown > 0;
  }
  search.addEventListener("input", filter);

  // --- the try-it panel --------------------------------------------------------------

  const form = $("try-form");
  const codeSelect = $("t-code");
  const run = $("t-run");
  const cancel = $("t-cancel");
  const views = new Map(); // code -> {view, then} from the <option>s the server rendered from the catalog
  for (const option of codeSelect.options) {
    views.set(option.value, { view: option.dataset.view, then: option.dataset.then || "200" });
  }
  const fields = ["t-code", "t-list", "t-seq-name", "t-seq", "t-delay", "t-location", "t-limit", "t-outage", "t-headers", "t-fault", "t-accept"];
  let controller = null;

  const mode = () => form.querySelector('input[name="mode"]:checked').value;

  function viewOf(code) {
    if (views.has(code)) return views.get(code);
    // Like the server: an unlisted 1xx is an interim reply followed by 200.
    return { view: code[0] === "1" ? "interim" : "ok", then: "200" };
  }

  function codesOf(text) {
    return (text.match(/\d{3}/g) || []).filter((code, i, all) => all.indexOf(code) === i);
  }

  // Keep a path readable (/status/200,503:2) when it is made of the expected
  // characters; anything else is percent-encoded and the server explains what is wrong.
  function segment(text) {
    const trimmed = text.replace(/\s+/g, "");
    return /^[0-9,:.*]+$/.test(trimmed) ? trimmed : encodeURIComponent(trimmed);
  }

  function request() {
    let path;
    let codes;
    if (mode() === "list") {
      path = "status/" + segment($("t-list").value);
      codes = codesOf($("t-list").value);
    } else if (mode() === "sequence") {
      path = "sequence/" + encodeURIComponent($("t-seq-name").value.trim()) + "/" + segment($("t-seq").value);
      codes = codesOf($("t-seq").value);
    } else {
      path = "status/" + codeSelect.value;
      codes = [codeSelect.value];
    }
    const query = new URLSearchParams();
    const delay = $("t-delay").value.trim();
    const location = $("t-location").value.trim();
    const fault = $("t-fault").value;
    if (delay) query.append("delay", delay);
    if (location) query.append("location", location);
    const limit = $("t-limit").value.trim();
    const outage = $("t-outage").value.trim();
    if (limit) query.append("limit", limit);
    if (outage) query.append("outage", outage);
    for (const line of $("t-headers").value.split("\n")) {
      const header = line.trim();
      if (!header) continue;
      const colon = header.indexOf(":");
      query.append("header", colon < 0 ? header : header.slice(0, colon).trim() + ":" + header.slice(colon + 1).trim());
    }
    if (fault) query.append("fault", fault);
    const qs = query.toString();
    // Relative to the page, so fetch and the shown URL use this server's own origin.
    const url = new URL(path + (qs ? "?" + qs : ""), document.baseURI).href;
    // The path on this server, for the transcript route (which takes no host).
    const target = "/" + path + (qs ? "?" + qs : "");
    return { url: url, target: target, codes: codes, fault: fault, accept: $("t-accept").value, follow: $("t-follow").checked };
  }

  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function curlFor(req) {
    const parts = ["curl", "-i"];
    if (req.codes.some((code) => viewOf(code).view === "headerless")) parts.push("--http0.9");
    if (req.accept) parts.push("-H", shellQuote("Accept: " + req.accept));
    parts.push(shellQuote(req.url));
    return parts.join(" ");
  }

  // What the browser cannot show, from the catalog facts on the <option>s.
  function noteFor(req) {
    if (req.fault && $("t-fault").selectedOptions[0].dataset.view === "fault") {
      return fmt(T.note_fault, { code: req.codes.join(", ") || "?", kind: "fault=" + req.fault });
    }
    if (mode() === "single") {
      const code = req.codes[0];
      const info = viewOf(code);
      switch (info.view) {
        case "interim": return fmt(T.note_interim, { code: code, then: info.then });
        case "upgrade": return fmt(T.note_upgrade, { code: code });
        case "headerless": return fmt(T.note_headerless, { code: code });
        case "fault": return fmt(T.note_fault, { code: code, kind: codeSelect.selectedOptions[0].dataset.kind });
        case "proxy": return fmt(T.note_proxy, { code: code });
        default: return "";
      }
    }
    const hidden = req.codes.filter((code) => viewOf(code).view !== "ok");
    return hidden.length ? fmt(T.note_list, { codes: hidden.join(", ") }) : "";
  }

  // The URL and curl boxes grow with their text, so nothing is hidden behind a scroll bar.
  function fit(box) {
    box.style.height = "auto";
    box.style.height = box.scrollHeight + 2 + "px";
  }

  function update() {
    for (const block of form.querySelectorAll(".mode")) block.hidden = block.dataset.mode !== mode();
    const req = request();
    $("t-url").value = req.url;
    $("t-open").href = req.url;
    $("t-curl").value = curlFor(req);
    fit($("t-url"));
    fit($("t-curl"));
    const note = noteFor(req);
    $("t-note").textContent = note;
    $("t-note").hidden = !note;
    // fetch() cannot ask for a protocol switch; a bare 101 would leave it hanging on the echo.
    const upgrade = mode() === "single" && !req.fault && viewOf(req.codes[0]).view === "upgrade";
    run.disabled = upgrade || controller !== null;
    $("t-wire").disabled = controller !== null; // the wire view shows every kind, a 101 included
    $("t-copied").textContent = "";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);

  function show(result) {
    const box = $("t-result");
    box.hidden = false;
    const status = $("r-status");
    $("r-url").textContent = "GET " + result.url;
    status.textContent = result.status;
    status.className = "statusline s" + (result.cls || "0");
    const time = $("r-time");
    time.textContent = result.time || "";
    if (result.ms !== undefined) time.dataset.ms = String(result.ms);
    else delete time.dataset.ms;
    $("r-info").textContent = result.info || "";
    $("r-info").hidden = !result.info;
    $("r-headers").textContent = result.headers || "";
    $("r-has-headers").hidden = !result.headers;
    $("r-body").textContent = result.body === undefined ? "" : result.body;
    $("r-has-body").hidden = result.body === undefined;
  }

  // One request with fetch(), as a browser client makes it; the outcome as show() takes it.
  async function fetchResult(req, signal) {
    const started = performance.now();
    try {
      // Follow by default, as browser clients do; the panel then says where it ended up.
      // credentials: "omit" keeps a 401's Basic challenge from opening a login dialog.
      const response = await fetch(req.url, {
        method: "GET",
        redirect: req.follow ? "follow" : "manual",
        credentials: "omit",
        cache: "no-store",
        headers: req.accept ? { Accept: req.accept } : {},
        signal: signal,
      });
      const headersAt = performance.now() - started;
      let body = await response.text();
      const total = performance.now() - started;
      const info = [];
      if (response.type === "opaqueredirect") {
        return { url: req.url, status: T.status_opaque, cls: "3", info: T.opaque, time: fmt(T.headers_after, { headers: Math.round(headersAt), total: Math.round(total) }), ms: Math.round(total) };
      }
      if (response.redirected) info.push(fmt(T.redirected, { url: response.url }));
      const choice = response.headers.get("x-mockstatus-choice");
      if (choice) info.push(fmt(T.choice, { code: choice }));
      const step = response.headers.get("x-mockstatus-step");
      if (step) info.push(fmt(T.step, { name: response.headers.get("x-mockstatus-sequence") || "", step: step }));
      if (body.length > BODY_LIMIT) body = body.slice(0, BODY_LIMIT) + "\n" + fmt(T.body_cut, { n: BODY_LIMIT });
      const lines = [];
      response.headers.forEach((value, name) => lines.push(name + ": " + value));
      return {
        url: req.url,
        status: (response.status + " " + response.statusText).trim(),
        cls: String(response.status)[0],
        time: fmt(T.headers_after, { headers: Math.round(headersAt), total: Math.round(total) }),
        ms: Math.round(total),
        info: info.join(" "),
        headers: lines.join("\n"),
        body: body === "" ? T.empty_body : body,
      };
    } catch (error) {
      if (error && error.name === "AbortError") return { url: req.url, status: T.cancelled };
      const total = Math.round(performance.now() - started);
      return { url: req.url, status: T.status_network, cls: "5", info: fmt(T.network_error, { error: String(error) }), time: total + " ms", ms: total };
    }
  }

  async function go(event) {
    event.preventDefault();
    if (controller !== null || run.disabled) return;
    const req = request();
    controller = new AbortController();
    run.disabled = true;
    cancel.hidden = false;
    show({ url: req.url, status: T.running });
    try {
      show(await fetchResult(req, controller.signal));
    } finally {
      controller = null;
      cancel.hidden = true;
      update();
      $("r-status").focus();
    }
  }
  form.addEventListener("submit", go);
  cancel.addEventListener("click", () => controller && controller.abort());

  // The status line takes focus after a run, so a keyboard or screen-reader user lands on the result.
  $("r-status").tabIndex = -1;

  $("t-seq-reset").addEventListener("click", async () => {
    const name = $("t-seq-name").value.trim();
    const message = $("t-copied");
    try {
      const response = await fetch(new URL("__mockstatus/sequences/" + encodeURIComponent(name), document.baseURI).href, { method: "DELETE", credentials: "omit" });
      message.textContent = response.ok ? fmt(T.reset_done, { name: name }) : fmt(T.reset_failed, { name: name, status: response.status + " " + response.statusText });
    } catch (error) {
      message.textContent = fmt(T.reset_failed, { name: name, status: String(error) });
    }
  });

  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = $(button.dataset.copy);
      const message = $("t-copied");
      try {
        await navigator.clipboard.writeText(field.value);
        message.textContent = T.copied;
      } catch (error) {
        // navigator.clipboard needs a secure context (https or localhost); fall back to the selection.
        field.focus();
        field.select();
        let copied = false;
        try { copied = document.execCommand("copy"); } catch (ignored) { copied = false; }
        message.textContent = copied ? T.copied : T.copy_failed;
      }
    });
  }

  // --- the wire view: the server's own transcript beside what fetch() saw ---------------

  const dialog = $("wire");
  const wireButton = $("t-wire");

  // Bytes as text with CR, LF and every other control or non-ASCII byte made visible;
  // each marker is its own element (made with textContent) so the stylesheet can colour it.
  function rawInto(pre, text) {
    pre.textContent = "";
    let plain = "";
    const flush = () => { if (plain) { pre.appendChild(document.createTextNode(plain)); plain = ""; } };
    const mark = (label) => {
      flush();
      const span = document.createElement("span");
      span.className = "ctl";
      span.textContent = label;
      pre.appendChild(span);
    };
    for (const ch of text) {
      const byte = ch.charCodeAt(0); // latin-1: one character per byte
      if (byte === 13) mark("\\r");
      else if (byte === 10) { mark("\\n"); plain += "\n"; }
      else if (byte === 9) mark("\\t");
      else if (byte < 32 || byte >= 127) mark("\\x" + byte.toString(16).padStart(2, "0"));
      else plain += ch;
    }
    flush();
  }

  function statusLine(head) {
    return (head.version + " " + (head.status === null ? "?" : head.status) + " " + head.reason).trim();
  }

  // What arrived, in order: heads, body pieces (each chunk's part past the head), the end.
  function timeline(found) {
    const events = [];
    if (found.handshake) {
      events.push({ kind: "handshake", at: found.handshake.ms || 0, text: found.handshake.ok ? fmt(T.w_handshake_ok, found.handshake) : fmt(T.w_handshake_failed, found.handshake) });
    }
    for (const head of found.interim) {
      events.push({ kind: "interim", status: head.status, at: head.at_ms, text: fmt(T.w_interim, { line: statusLine(head) }) });
    }
    if (found.final) {
      events.push({ kind: "final", status: found.final.status, at: found.final.at_ms, text: fmt(T.w_final, { line: statusLine(found.final), n: found.final.headers.length }) });
    }
    const heads = found.interim.concat(found.final ? [found.final] : []);
    const bodyStart = found.final ? found.final.offset + found.final.size : heads.reduce((end, h) => Math.max(end, h.offset + h.size), 0);
    let offset = 0;
    for (const chunk of found.chunks) {
      const from = Math.max(offset, bodyStart);
      const to = offset + chunk.size;
      if (to > from) {
        let text;
        if (found.headerless && offset === 0) text = fmt(T.w_headerless, { n: to - from });
        else if (found.final) text = fmt(T.w_body, { n: to - from });
        else text = fmt(T.w_bytes, { n: to - from });
        events.push({ kind: found.headerless ? "headerless" : "body", at: chunk.at_ms, text: text });
      }
      offset = to;
    }
    if (found.note) events.push({ kind: "note", at: found.end.at_ms, text: fmt(T.w_note, { note: found.note }) });
    if (found.truncated) events.push({ kind: "note", at: found.end.at_ms, text: T.w_truncated });
    events.push({ kind: "end", how: found.end.how, at: found.end.at_ms, text: found.end.text });
    return events;
  }

  function showWire(found) {
    const list = $("w-timeline");
    list.textContent = "";
    for (const event of timeline(found)) {
      const li = document.createElement("li");
      li.className = "w-" + event.kind;
      li.dataset.kind = event.kind;
      li.dataset.ms = String(event.at);
      if (event.status !== undefined && event.status !== null) li.dataset.status = String(event.status);
      if (event.how) li.dataset.how = event.how;
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = event.at.toFixed(1) + " ms";
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = event.text;
      li.append(at, what);
      list.appendChild(li);
    }
    rawInto($("w-raw"), found.raw.text);
    $("w-raw").dataset.size = String(found.raw.size);
  }

  function showFetch(result) {
    const status = $("w-f-status");
    status.textContent = result.status;
    status.className = "statusline s" + (result.cls || "0");
    $("w-f-time").textContent = result.time || "";
    $("w-f-info").textContent = result.info || "";
    $("w-f-info").hidden = !result.info;
    $("w-f-headers").textContent = result.headers || "";
    $("w-f-has-headers").hidden = !result.headers;
    $("w-f-body").textContent = result.body === undefined ? "" : result.body;
    $("w-f-has-body").hidden = result.body === undefined;
  }

  function wireStatus(text) {
    $("w-status").textContent = text;
    $("w-status").hidden = !text;
  }

  async function showTheWire() {
    if (controller !== null) return;
    const req = request();
    controller = new AbortController();
    run.disabled = true;
    wireButton.disabled = true;
    $("w-url").textContent = "GET " + req.url;
    $("w-timeline").textContent = "";
    $("w-raw").textContent = "";
    delete $("w-raw").dataset.size;
    showFetch({ status: "" });
    dialog.dataset.state = "running";
    wireStatus(T.w_running);
    if (!dialog.open) dialog.showModal();
    try {
      const query = new URLSearchParams({ path: req.target });
      const response = await fetch(new URL("__mockstatus/transcript?" + query, document.baseURI).href, {
        credentials: "omit", cache: "no-store", signal: controller.signal,
      });
      const found = await response.json();
      if (response.ok) {
        showWire(found);
        wireStatus("");
      } else {
        wireStatus(fmt(T.w_failed, { status: response.status, error: found.error || "" }));
      }
      // Then the browser's view of the same request (a sequence or a rate limit moves on one step).
      // fetch() cannot ask for a protocol switch: a bare 101 would leave it hanging on the echo.
      if (mode() === "single" && !req.fault && viewOf(req.codes[0]).view === "upgrade") {
        showFetch({ status: "—", info: fmt(T.note_upgrade, { code: req.codes[0] }) });
      } else {
        showFetch(await fetchResult(req, controller.signal));
      }
    } catch (error) {
      wireStatus(fmt(T.w_failed, { status: "-", error: String(error) }));
    } finally {
      controller = null;
      wireButton.disabled = false;
      dialog.dataset.state = "done";
      update();
    }
  }

  wireButton.addEventListener("click", showTheWire);
  $("w-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (controller !== null) controller.abort();
    if (/^#wire-/.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
  });

  // A card's "Show the wire" link, or a page opened at #wire-600: that code, in the wire view.
  function wireFromHash() {
    const match = /^#wire-(\d{3})$/.exec(location.hash);
    if (!match || !views.has(match[1])) return; // only a code the catalog lists
    form.querySelector('input[name="mode"][value="single"]').checked = true;
    codeSelect.value = match[1];
    update();
    showTheWire();
  }
  window.addEventListener("hashchange", wireFromHash);
  document.getElementById("codes-list").addEventListener("click", (event) => {
    const link = event.target.closest("a.wire-link");
    if (!link || location.hash !== link.hash) return;
    event.preventDefault(); // the same hash again fires no hashchange
    wireFromHash();
  });

  // "Try" on a code: put it in the panel and move there.
  document.getElementById("codes-list").addEventListener("click", (event) => {
    const button = event.target.closest("button.try");
    if (!button) return;
    form.querySelector('input[name="mode"][value="single"]').checked = true;
    codeSelect.value = button.dataset.code;
    update();
    $("try-title").scrollIntoView({ block: "start" });
    run.focus({ preventScroll: true });
  });

  // The language links load the other precomputed page; carry the panel and filter over.
  for (const link of document.querySelectorAll(".langs a")) {
    link.addEventListener("click", () => {
      const state = { mode: mode(), follow: $("t-follow").checked, q: search.value, fields: {} };
      for (const id of fields) state.fields[id] = $(id).value;
      try { sessionStorage.setItem(SAVED, JSON.stringify(state)); } catch (ignored) { /* storage off */ }
    });
  }

  function restore() {
    let state = null;
    try {
      state = JSON.parse(sessionStorage.getItem(SAVED) || "null");
      sessionStorage.removeItem(SAVED);
    } catch (ignored) { state = null; }
    if (!state) return;
    const radio = form.querySelector('input[name="mode"][value="' + state.mode + '"]');
    if (radio) radio.checked = true;
    $("t-follow").checked = state.follow !== false;
    search.value = state.q || "";
    for (const id of fields) {
      if (state.fields && typeof state.fields[id] === "string") $(id).value = state.fields[id];
    }
  }

  restore();
  filter();
  update();
  wireFromHash();
})();
