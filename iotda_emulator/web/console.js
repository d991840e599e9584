// IoTDA emulator web console: vanilla JS, no build step, no external resources.
// Every piece of device-provided text is put in the page with textContent (never innerHTML), so a
// payload such as "<img onerror=...>" shows as text and never runs.
"use strict";

(function () {
  var API = "/console/api";
  var DEVICE_POLL_MS = 2000;
  var TRACE_POLL_MS = 1000;
  var TRACE_MAX_ROWS = 1000;

  var state = {
    devices: [],
    selected: null,
    traceCursor: 0,           // opaque position in the trace returned by the server
    traceGen: 0               // bumps when the filter changes: late answers of an old poll are dropped
  };

  // ---- small helpers ---------------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "className") { node.className = attrs[k]; }
        else { node.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function pretty(value) {
    if (value === undefined) { return ""; }
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function fmtTime(t) {
    var d = new Date(t * 1000);
    function p(n, w) { n = String(n); while (n.length < (w || 2)) { n = "0" + n; } return n; }
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
  }

  // One JSON call: resolves to {ok, status, data}; network errors resolve with status 0.
  function api(method, path, body) {
    var opts = { method: method, headers: { "Accept": "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(API + path, opts).then(function (resp) {
      // the emulator has application keys and this browser no (longer a) session: log in first
      if (resp.status === 401) { window.location.assign("/console/login"); }
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: "bad_json", message: text }; }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    }, function (err) {
      return { ok: false, status: 0, data: { error: "network", message: String(err) } };
    });
  }

  function devPath(suffix) {
    return "/devices/" + encodeURIComponent(state.selected) + suffix;
  }

  // Parse a textarea as a JSON object; shows the problem in `out` and returns null when it is not one.
  function parseObject(text, what, out) {
    var value;
    try { value = JSON.parse(text || "{}"); } catch (e) {
      showResult(out, "error", what + " is not valid JSON: " + e.message);
      return null;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      showResult(out, "error", what + " must be a JSON object");
      return null;
    }
    return value;
  }

  function showResult(node, kind, title, detail) {
    clear(node);
    node.className = "result " + kind;
    node.appendChild(el("div", { className: "result-title", text: title }));
    if (detail !== undefined) { node.appendChild(el("pre", { className: "result-body", text: pretty(detail) })); }
  }

  function errorText(res) {
    var d = res.data || {};
    if (res.status === 504 || d.error === "timeout") { return "Timeout: " + (d.message || "the device did not answer"); }
    if (res.status === 409 || d.error === "offline") { return "Device offline: " + (d.message || ""); }
    if (res.status === 0) { return "Cannot reach the emulator: " + (d.message || ""); }
    return "Error " + res.status + (d.error ? " (" + d.error + ")" : "") + ": " + (d.message || "");
  }

  function needDevice(out) {
    if (!state.selected) { showResult(out, "error", "Select a device first."); return false; }
    return true;
  }

  // Runs a request with `button` disabled and a "pending" note in `out`; `onOk(data)` shows the answer.
  function run(button, out, pendingText, promise, onOk) {
    button.disabled = true;
    showResult(out, "pending", pendingText);
    return promise.then(function (res) {
      button.disabled = false;
      if (res.ok) { onOk(res.data); } else { showResult(out, "error", errorText(res)); }
    });
  }

  // ---- devices ---------------------------------------------------------------------------------

  function refreshDevices() {
    return api("GET", "/devices").then(function (res) {
      var status = $("api-status");
      if (!res.ok) {
        status.textContent = "emulator unreachable";
        status.className = "status bad";
        return;
      }
      status.textContent = "connected";
      status.className = "status good";
      state.devices = (res.data && res.data.devices) || [];
      renderDevices();
    });
  }

  function renderDevices() {
    var list = $("device-list");
    var filter = ($("device-filter").value || "").toLowerCase();
    clear(list);
    var online = 0;
    state.devices.forEach(function (d) {
      if (d.online) { online += 1; }
      var id = String(d.device_id);
      if (filter && id.toLowerCase().indexOf(filter) < 0) { return; }
      var item = el("li", {
        className: "device" + (id === state.selected ? " selected" : ""),
        "data-device-id": id,
        "data-online": d.online ? "true" : "false",
        title: id
      }, [
        el("span", { className: "dot " + (d.online ? "on" : "off") }),
        el("span", { className: "mono device-id", text: id }),
        el("span", { className: "state " + (d.online ? "on" : "off"), text: d.online ? "online" : "offline" })
      ]);
      var extra = [];
      if (d.product_id) { extra.push("product " + d.product_id); }
      if (d.gateway_id && d.gateway_id !== id) { extra.push("child of " + d.gateway_id); }
      if (extra.length) { item.appendChild(el("div", { className: "muted small", text: extra.join(" - ") })); }
      item.addEventListener("click", function () { selectDevice(id); });
      list.appendChild(item);
    });
    $("device-count").textContent = "(" + online + " online / " + state.devices.length + ")";
    renderSelected();
  }

  function renderSelected() {
    var badge = $("selected-state");
    if (!state.selected) { badge.textContent = ""; badge.className = "badge"; return; }
    var dev = state.devices.filter(function (d) { return String(d.device_id) === state.selected; })[0];
    var text = !dev ? "deleted" : (dev.online ? "online" : "offline");
    badge.textContent = text;
    badge.className = "badge " + (dev && dev.online ? "on" : "off");
  }

  function selectDevice(id) {
    state.selected = id;
    $("selected-device").textContent = id;
    renderDevices();
    if ($("trace-only-selected").checked) { resetTrace(); }
    if ($("panel-shadow").classList.contains("active")) { refreshShadow(); }
  }

  // ---- tabs ------------------------------------------------------------------------------------

  function showTab(button) {
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
      b.classList.toggle("active", b === button);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".panel"), function (p) {
      p.classList.toggle("active", p.id === button.getAttribute("data-panel"));
    });
    if (button.id === "tab-shadow" && state.selected) { refreshShadow(); }
    if (button.id === "tab-ota") { refreshOta(); }
  }

  // ---- command / message / properties ----------------------------------------------------------

  function sendCommand(ev) {
    ev.preventDefault();
    var out = $("cmd-result");
    if (!needDevice(out)) { return; }
    var paras = parseObject($("cmd-paras").value, "paras", out);
    if (paras === null) { return; }
    var body = { service_id: $("cmd-service").value.trim(), command_name: $("cmd-name").value.trim(), paras: paras };
    var timeout = $("cmd-timeout").value.trim();
    if (timeout) { body.timeout = Number(timeout); }
    run($("cmd-send"), out, "Waiting for the device's response...", api("POST", devPath("/commands"), body),
      function (data) { showResult(out, "ok", "Response from the device", data.response); });
  }

  function sendMessage(ev) {
    ev.preventDefault();
    var out = $("msg-result");
    if (!needDevice(out)) { return; }
    var body = { payload: $("msg-payload").value, qos: Number($("msg-qos").value) };
    var topic = $("msg-topic").value.trim();
    if (topic) { body.topic = topic; }
    run($("msg-send"), out, "Sending...", api("POST", devPath("/messages"), body), function (data) {
      showResult(out, "ok", "Message sent, message_id " + data.message_id);
    });
  }

  function setProperties(ev) {
    ev.preventDefault();
    var out = $("prop-result");
    if (!needDevice(out)) { return; }
    var props = parseObject($("prop-set-values").value, "properties", out);
    if (props === null) { return; }
    var body = { services: [{ service_id: $("prop-set-service").value.trim(), properties: props }] };
    run($("prop-set"), out, "Waiting for the device...", api("POST", devPath("/properties"), body),
      function (data) { showResult(out, "ok", "Set properties: device answered", data.response); });
  }

  function getProperties(ev) {
    ev.preventDefault();
    var out = $("prop-result");
    if (!needDevice(out)) { return; }
    var sid = $("prop-get-service").value.trim();
    var q = sid ? "?service_id=" + encodeURIComponent(sid) : "";
    run($("prop-get"), out, "Waiting for the device...", api("GET", devPath("/properties") + q),
      function (data) { showResult(out, "ok", "Properties reported by the device", data.response); });
  }

  // ---- shadow ----------------------------------------------------------------------------------

  function shadowPart(part) {
    if (!part) { return el("span", { className: "muted", text: "-" }); }
    var wrap = el("div");
    wrap.appendChild(el("pre", { text: pretty(part.properties || {}) }));
    if (part.event_time) { wrap.appendChild(el("div", { className: "muted small", text: String(part.event_time) })); }
    return wrap;
  }

  function refreshShadow() {
    var out = $("shadow-result");
    if (!needDevice(out)) { return Promise.resolve(); }
    return api("GET", devPath("/shadow")).then(function (res) {
      var body = $("shadow-body");
      clear(body);
      if (!res.ok) { showResult(out, "error", errorText(res), res.data); return; }
      var rows = (res.data && res.data.shadow) || [];
      if (!rows.length) {
        body.appendChild(el("tr", {}, [el("td", { colspan: "4", className: "muted", text: "no shadow data yet" })]));
      }
      rows.forEach(function (s) {
        var row = el("tr", { "data-service-id": String(s.service_id), title: "click to edit desired" }, [
          el("td", { className: "mono", text: String(s.service_id) }),
          el("td", {}, [shadowPart(s.desired)]),
          el("td", {}, [shadowPart(s.reported)]),
          el("td", { className: "version", text: String(s.version) })
        ]);
        row.addEventListener("click", function () {
          $("shadow-service").value = String(s.service_id);
          $("shadow-values").value = pretty((s.desired && s.desired.properties) || {});
        });
        body.appendChild(row);
      });
    });
  }

  function setDesired(ev) {
    ev.preventDefault();
    var out = $("shadow-result");
    if (!needDevice(out)) { return; }
    var props = parseObject($("shadow-values").value, "desired properties", out);
    if (props === null) { return; }
    var body = { service_id: $("shadow-service").value.trim(), properties: props };
    run($("shadow-set"), out, "Saving...", api("POST", devPath("/shadow"), body), function (data) {
      showResult(out, "ok", "Desired properties saved, shadow version " + data.version);
      refreshShadow();
    });
  }

  // ---- OTA -------------------------------------------------------------------------------------

  // A table of JSON objects (columns: the union of their keys), every cell as text.
  function fillTable(head, body, rows) {
    clear(head); clear(body);
    if (!rows.length) { return; }
    var cols = [];
    rows.forEach(function (r) {
      Object.keys(r || {}).forEach(function (k) { if (cols.indexOf(k) < 0) { cols.push(k); } });
    });
    head.appendChild(el("tr", {}, cols.map(function (c) { return el("th", { text: c }); })));
    rows.forEach(function (r) {
      body.appendChild(el("tr", {}, cols.map(function (c) {
        var v = r ? r[c] : undefined;
        return el("td", { className: "mono", text: v === undefined || v === null ? "" :
          (typeof v === "object" ? JSON.stringify(v) : String(v)) });
      })));
    });
  }

  function refreshOta() {
    var out = $("ota-result");
    return api("GET", "/ota").then(function (res) {
      fillTable($("ota-head"), $("ota-body"), []);
      fillTable($("ota-pkg-head"), $("ota-pkg-body"), []);
      if (!res.ok) { showResult(out, "error", errorText(res), res.data); return; }
      var data = res.data || {};
      if (!data.available) {
        showResult(out, "muted", "OTA: not available (" + (data.message || "no $ota service") + ")");
        return;
      }
      var tasks = Array.isArray(data.tasks) ? data.tasks : [];
      var packages = Array.isArray(data.packages) ? data.packages : [];
      showResult(out, "ok", "OTA: " + tasks.length + " task(s), " + packages.length + " package(s)");
      fillTable($("ota-head"), $("ota-body"), tasks);
      fillTable($("ota-pkg-head"), $("ota-pkg-body"), packages);
    });
  }

  // ---- trace -----------------------------------------------------------------------------------

  function resetTrace() {
    state.traceGen += 1;
    state.traceCursor = 0;
    clear($("trace-body"));
    $("trace-count").textContent = "";
  }

  function pollTrace() {
    if ($("trace-pause").checked) { return Promise.resolve(); }
    var gen = state.traceGen;
    var q = "?after=" + encodeURIComponent(state.traceCursor);
    if ($("trace-only-selected").checked && state.selected) { q += "&device_id=" + encodeURIComponent(state.selected); }
    return api("GET", "/trace" + q).then(function (res) {
      if (!res.ok || gen !== state.traceGen) { return; }   // a late answer to an older filter
      var data = res.data || {};
      var body = $("trace-body");
      (data.entries || []).forEach(function (e) {
        body.insertBefore(traceRow(e), body.firstChild);   // newest first
      });
      if (data.cursor !== undefined && data.cursor !== null) { state.traceCursor = data.cursor; }
      while (body.childNodes.length > TRACE_MAX_ROWS) { body.removeChild(body.lastChild); }
      $("trace-count").textContent = body.childNodes.length + " shown" + (data.truncated ? " (older entries skipped)" : "");
    });
  }

  function traceRow(e) {
    var up = e.direction === "up";
    var payload = el("pre", { className: "payload", text: e.payload || "" });
    payload.title = "click to expand";
    payload.addEventListener("click", function () { payload.classList.toggle("expanded"); });
    var payloadCell = el("td", {}, [payload]);
    if (e.encoding && e.encoding !== "utf-8") {
      payloadCell.insertBefore(el("span", { className: "badge", text: e.encoding }), payload);
    }
    return el("tr", {
      className: "trace-row " + (up ? "up" : "down"),
      "data-device-id": String(e.device_id || ""),
      "data-direction": String(e.direction || ""),
      "data-kind": String(e.kind || "")
    }, [
      el("td", { className: "mono nowrap", text: fmtTime(e.time) }),
      el("td", { className: "mono", text: String(e.device_id || "") }),
      el("td", { className: "dir", text: up ? "\u2191 up" : "\u2193 down" }),
      el("td", { text: String(e.kind || "") }),
      el("td", { className: "mono topic", title: String(e.topic || ""), text: String(e.topic_suffix || e.topic || "") }),
      payloadCell
    ]);
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function every(ms, fn) {
    // Chained timeouts, not setInterval: a slow answer never piles up requests.
    function tick() { fn().then(function () { setTimeout(tick, ms); }, function () { setTimeout(tick, ms); }); }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
      b.addEventListener("click", function () { showTab(b); });
    });
    $("device-filter").addEventListener("input", renderDevices);
    $("cmd-form").addEventListener("submit", sendCommand);
    $("msg-form").addEventListener("submit", sendMessage);
    $("prop-set-form").addEventListener("submit", setProperties);
    $("prop-get-form").addEventListener("submit", getProperties);
    $("shadow-form").addEventListener("submit", setDesired);
    $("shadow-refresh").addEventListener("click", refreshShadow);
    $("ota-refresh").addEventListener("click", refreshOta);
    $("trace-only-selected").addEventListener("change", resetTrace);
    $("trace-clear").addEventListener("click", function () {
      // keep the position: only newer entries will appear
      clear($("trace-body"));
      $("trace-count").textContent = "";
    });
    var wanted = new URLSearchParams(window.location.search).get("device");
    if (wanted) { selectDevice(wanted); }
    every(DEVICE_POLL_MS, refreshDevices);
    every(TRACE_POLL_MS, pollTrace);
  });
})();
