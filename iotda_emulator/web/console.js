// IoTDA emulator web console: vanilla JS, no build step, no external resources.
// Every piece of device-provided text is put in the page with textContent (never innerHTML), so a
// payload such as "<img onerror=...>" shows as text and never runs.
"use strict";

(function () {
  var API = "/console/api";
  var DEVICE_POLL_MS = 2000;
  var TRACE_POLL_MS = 1000;
  var AUTO_REFRESH_MS = 2000;     // shadow, chart, OTA and bootstrap views while they are shown
  var TRACE_MAX_ROWS = 1000;

  var state = {
    devices: [],
    selected: null,
    traceCursor: 0,           // opaque position in the trace returned by the server
    traceGen: 0,              // bumps when the filter changes: late answers of an old poll are dropped
    products: [],
    deleteArmed: null         // device id whose "Delete" was clicked once (a second click deletes)
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

  function pad(n, w) { n = String(n); while (n.length < (w || 2)) { n = "0" + n; } return n; }

  // Local date and time with milliseconds: "2026-12-06 21:40:01.123".
  function fmtDateTime(t) {
    var d = new Date(t * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) +
      ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== "") {
        parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(params[k]));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  // One call: resolves to {ok, status, data}; network errors resolve with status 0. `body` is sent as JSON,
  // or as is when `raw` (a File for an upload).
  function api(method, path, body, raw) {
    var opts = { method: method, headers: { "Accept": "application/json" }, cache: "no-store",
      credentials: "same-origin" };
    if (raw !== undefined) {
      opts.headers["Content-Type"] = "application/octet-stream";
      opts.body = raw;
    } else if (body !== undefined) {
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
    if (res.status === 409 && d.error === "offline") { return "Device offline: " + (d.message || ""); }
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

  // A table of JSON objects (columns: the union of their keys), every cell as text; `key` names the column
  // whose value goes into each row's data-key attribute.
  function fillTable(head, body, rows, key) {
    clear(head); clear(body);
    if (!rows.length) { return; }
    var cols = [];
    rows.forEach(function (r) {
      Object.keys(r || {}).forEach(function (k) { if (cols.indexOf(k) < 0) { cols.push(k); } });
    });
    head.appendChild(el("tr", {}, cols.map(function (c) { return el("th", { text: c }); })));
    rows.forEach(function (r) {
      var row = el("tr", {}, cols.map(function (c) {
        var v = r ? r[c] : undefined;
        return el("td", { className: "mono", "data-col": c, text: v === undefined || v === null ? "" :
          (typeof v === "object" ? JSON.stringify(v) : String(v)) });
      }));
      if (key && r && r[key] !== undefined) { row.setAttribute("data-key", String(r[key])); }
      body.appendChild(row);
    });
  }

  function isShown(id) {
    var node = $(id);
    return !!node && node.classList.contains("active") &&
      (!node.closest(".view") || node.closest(".view").classList.contains("active"));
  }

  // ---- views (Devices / Products / OTA / Bootstrap) -----------------------------------------------

  function showView(button) {
    Array.prototype.forEach.call(document.querySelectorAll(".view-btn"), function (b) {
      b.classList.toggle("active", b === button);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".view"), function (v) {
      v.classList.toggle("active", v.id === button.getAttribute("data-view"));
    });
    var view = button.getAttribute("data-view");
    if (view === "view-products") { refreshProducts(); }
    if (view === "view-ota") {
      if (!$("ota-task-devices").value && state.selected) { $("ota-task-devices").value = state.selected; }
      refreshOta();
    }
    if (view === "view-bootstrap") { refreshBootstrap(); }
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

  function deviceState(d) {
    if (!d) { return "deleted"; }
    if (d.frozen) { return "frozen"; }
    return d.online ? "online" : "offline";
  }

  function selectedRecord() {
    return state.devices.filter(function (d) { return String(d.device_id) === state.selected; })[0];
  }

  function renderDevices() {
    var list = $("device-list");
    var filter = ($("device-filter").value || "").toLowerCase();
    clear(list);
    var online = 0;
    var ids = $("device-ids");
    clear(ids);
    state.devices.forEach(function (d) {
      if (d.online) { online += 1; }
      var id = String(d.device_id);
      ids.appendChild(el("option", { value: id }));
      if (filter && id.toLowerCase().indexOf(filter) < 0) { return; }
      var st = deviceState(d);
      var item = el("li", {
        className: "device" + (id === state.selected ? " selected" : ""),
        "data-device-id": id,
        "data-online": d.online ? "true" : "false",
        "data-frozen": d.frozen ? "true" : "false",
        title: id
      }, [
        el("span", { className: "dot " + (d.online ? "on" : "off") }),
        el("span", { className: "mono device-id", text: id }),
        el("span", { className: "state " + (d.online ? "on" : st), text: st })
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
    if (!state.selected) { badge.textContent = ""; badge.className = "badge"; renderManage(); return; }
    var dev = selectedRecord();
    badge.textContent = deviceState(dev);
    badge.className = "badge " + (dev && dev.online ? "on" : "off");
    renderManage();
  }

  function selectDevice(id) {
    var changed = state.selected !== id;
    state.selected = id;
    $("selected-device").textContent = id;
    if (changed) { state.deleteArmed = null; resetDeleteButton(); clear($("charts")); }
    renderDevices();
    if (isShown("panel-shadow")) { refreshShadow(); }
    if (isShown("panel-chart")) { refreshChart(); }
  }

  function productOptions(select, keepValue) {
    var current = keepValue ? select.value : "";
    clear(select);
    state.products.forEach(function (p) {
      select.appendChild(el("option", { value: String(p.product_id), text: p.product_id + (p.name && p.name !==
        p.product_id ? " (" + p.name + ")" : "") }));
    });
    if (current) { select.value = current; }
  }

  function loadProducts() {
    return api("GET", "/products").then(function (res) {
      if (!res.ok) { return; }
      state.products = (res.data && res.data.products) || [];
      productOptions($("add-product"), true);
    });
  }

  function addDevice(ev) {
    ev.preventDefault();
    var out = $("add-result");
    var body = { product_id: $("add-product").value };
    [["device_id", "add-id"], ["node_id", "add-node"], ["secret", "add-secret"]].forEach(function (pair) {
      var v = $(pair[1]).value.trim();
      if (v) { body[pair[0]] = v; }
    });
    if (!body.product_id) { showResult(out, "error", "Create a product first (REST CreateProduct)."); return; }
    run($("add-send"), out, "Creating...", api("POST", "/devices", body), function (data) {
      var id = data.device.device_id;
      clear(out);
      out.className = "result ok";
      out.appendChild(el("div", { className: "result-title", text: "Device " + id + " created" }));
      out.appendChild(el("div", { className: "small", text: "Secret (shown once, keep it):" }));
      out.appendChild(el("pre", { id: "add-new-secret", className: "result-body secret", text: data.secret || "" }));
      $("add-secret").value = "";
      refreshDevices().then(function () { selectDevice(id); });
    });
  }

  // ---- device management (freeze, reset secret, delete) -----------------------------------------

  function renderManage() {
    var info = $("manage-info");
    clear(info);
    var dev = state.selected ? selectedRecord() : null;
    if (!dev) {
      info.appendChild(el("dd", { className: "muted", text: state.selected ? "the device no longer exists" :
        "select a device" }));
      return;
    }
    [["status", deviceState(dev)], ["product", dev.product_id], ["node_id", dev.node_id],
      ["auth", dev.auth_type], ["gateway", dev.gateway_id || "-"],
      ["created", dev.created ? fmtDateTime(dev.created) : "-"]].forEach(function (pair) {
      info.appendChild(el("dt", { text: pair[0] }));
      info.appendChild(el("dd", { className: "mono", "data-fact": pair[0], text: String(pair[1] === null ||
        pair[1] === undefined ? "-" : pair[1]) }));
    });
    $("freeze-btn").disabled = !!dev.frozen;
    $("unfreeze-btn").disabled = !dev.frozen;
  }

  function setFrozen(frozen) {
    var out = $("manage-result");
    if (!needDevice(out)) { return; }
    var button = frozen ? $("freeze-btn") : $("unfreeze-btn");
    run(button, out, frozen ? "Freezing..." : "Unfreezing...", api("POST", devPath(frozen ? "/freeze" : "/unfreeze")),
      function (data) {
        showResult(out, "ok", "Device " + data.device_id + (frozen ? " frozen: its connections are refused" :
          " unfrozen: it may connect again"));
        refreshDevices();
      });
  }

  function resetSecret(ev) {
    ev.preventDefault();
    var out = $("manage-result");
    if (!needDevice(out)) { return; }
    var body = { force_disconnect: $("reset-force").checked };
    var secret = $("reset-secret").value.trim();
    if (secret) { body.secret = secret; }
    run($("reset-send"), out, "Resetting the secret...", api("POST", devPath("/reset-secret"), body), function (data) {
      clear(out);
      out.className = "result ok";
      out.appendChild(el("div", { className: "result-title", text: "New secret of " + data.device_id +
        " (shown once, keep it):" }));
      out.appendChild(el("pre", { id: "reset-new-secret", className: "result-body secret", text: data.secret }));
      $("reset-secret").value = "";
    });
  }

  function resetDeleteButton() {
    $("delete-btn").textContent = "Delete device";
    $("delete-btn").classList.remove("armed");
  }

  // Two clicks delete: the first arms the button (for 5 s), the second deletes.
  function deleteDevice() {
    var out = $("manage-result");
    if (!needDevice(out)) { return; }
    var id = state.selected;
    if (state.deleteArmed !== id) {
      state.deleteArmed = id;
      $("delete-btn").textContent = "Click again to delete " + id;
      $("delete-btn").classList.add("armed");
      setTimeout(function () { if (state.deleteArmed === id) { state.deleteArmed = null; resetDeleteButton(); } }, 5000);
      return;
    }
    state.deleteArmed = null;
    resetDeleteButton();
    run($("delete-btn"), out, "Deleting...", api("DELETE", devPath("")), function () {
      showResult(out, "ok", "Device " + id + " deleted");
      refreshDevices();
    });
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
    if (button.id === "tab-chart" && state.selected) { refreshChart(); }
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
    run($("prop-get"), out, "Waiting for the device...", api("GET", devPath("/properties") + query({ service_id: sid })),
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
    var device = state.selected;
    return api("GET", devPath("/shadow")).then(function (res) {
      if (device !== state.selected) { return; }      // an answer for the previously selected device
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
          el("td", { className: "desired" }, [shadowPart(s.desired)]),
          el("td", { className: "reported" }, [shadowPart(s.reported)]),
          el("td", { className: "version", text: String(s.version) })
        ]);
        row.addEventListener("click", function () {
          $("shadow-service").value = String(s.service_id);
          $("shadow-values").value = pretty((s.desired && s.desired.properties) || {});
        });
        body.appendChild(row);
      });
      $("shadow-updated").textContent = "updated " + fmtDateTime(Date.now() / 1000);
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

  // ---- chart -----------------------------------------------------------------------------------

  function refreshChart() {
    if (!state.selected) { $("chart-info").textContent = "select a device"; return Promise.resolve(); }
    var device = state.selected;
    return api("GET", devPath("/series")).then(function (res) {
      if (device !== state.selected) { return; }
      if (!res.ok) { $("chart-info").textContent = errorText(res); return; }
      var series = (res.data && res.data.series) || [];
      $("chart-info").textContent = res.data.reports + " report(s), " + series.length +
        " numeric propert" + (series.length === 1 ? "y" : "ies") + " - " + fmtDateTime(Date.now() / 1000);
      window.ConsoleChart.draw($("charts"), series);
      if (!series.length) {
        $("charts").appendChild(el("p", { className: "muted", text: "no numeric property reported yet" }));
      }
    });
  }

  // ---- products --------------------------------------------------------------------------------

  function refreshProducts() {
    return api("GET", "/products").then(function (res) {
      var body = $("products-body");
      clear(body);
      if (!res.ok) { showResult($("product-result"), "error", errorText(res)); return; }
      state.products = (res.data && res.data.products) || [];
      productOptions($("add-product"), true);
      $("product-count").textContent = "(" + state.products.length + ")";
      state.products.forEach(function (p) {
        var row = el("tr", { className: "clickable", "data-product-id": String(p.product_id) }, [
          el("td", { className: "mono", text: String(p.product_id) }),
          el("td", { text: String(p.name || "") }),
          el("td", { text: String(p.services) }),
          el("td", { text: String(p.devices) })
        ]);
        row.addEventListener("click", function () { showProduct(String(p.product_id)); });
        body.appendChild(row);
      });
    });
  }

  function modelTable(title, cols, rows, cssClass) {
    var wrap = el("div", { className: "table-wrap" });
    var table = el("table", { className: "data " + cssClass });
    table.appendChild(el("caption", { text: title }));
    table.appendChild(el("thead", {}, [el("tr", {}, cols.map(function (c) { return el("th", { text: c[0] }); }))]));
    var body = el("tbody");
    rows.forEach(function (r) {
      body.appendChild(el("tr", {}, cols.map(function (c) {
        var v = c[1](r);
        return el("td", { className: "mono", text: v === undefined || v === null ? "" : String(v) });
      })));
    });
    if (!rows.length) { body.appendChild(el("tr", {}, [el("td", { colspan: String(cols.length), className: "muted",
      text: "none" })])); }
    table.appendChild(body);
    wrap.appendChild(table);
    return wrap;
  }

  function paraList(paras) {
    return (paras || []).map(function (p) { return p.para_name + ":" + p.data_type; }).join(", ");
  }

  function showProduct(productId) {
    $("product-title").textContent = productId;
    Array.prototype.forEach.call(document.querySelectorAll("#products-body tr"), function (r) {
      r.classList.toggle("selected", r.getAttribute("data-product-id") === productId);
    });
    return api("GET", "/products/" + encodeURIComponent(productId)).then(function (res) {
      var detail = $("product-detail");
      clear(detail);
      clear($("product-result"));
      $("product-result").className = "result";
      if (!res.ok) { showResult($("product-result"), "error", errorText(res)); return; }
      var p = res.data.product;
      var facts = el("dl", { className: "facts" });
      [["name", p.name], ["device type", p.device_type], ["protocol", p.protocol_type], ["data format", p.data_format],
        ["manufacturer", p.manufacturer_name], ["created", p.create_time]].forEach(function (pair) {
        facts.appendChild(el("dt", { text: pair[0] }));
        facts.appendChild(el("dd", { text: pair[1] === null || pair[1] === undefined ? "-" : String(pair[1]) }));
      });
      detail.appendChild(facts);
      var services = p.service_capabilities || [];
      if (!services.length) { detail.appendChild(el("p", { className: "muted", text: "this product defines no service" })); }
      services.forEach(function (s) {
        var box = el("section", { className: "service", "data-service-id": String(s.service_id) });
        box.appendChild(el("h3", { text: "Service " + s.service_id + (s.service_type ? " (" + s.service_type + ")" : "") +
          (s.option ? " - " + s.option : "") }));
        box.appendChild(modelTable("Properties", [
          ["name", function (x) { return x.property_name; }], ["type", function (x) { return x.data_type; }],
          ["unit", function (x) { return x.unit; }],
          ["range", function (x) { return x.min !== null && x.min !== undefined ? x.min + " .. " + x.max : (x.enum_list ?
            x.enum_list.join("|") : ""); }],
          ["access", function (x) { return x.method; }], ["required", function (x) { return x.required ? "yes" : ""; }]
        ], s.properties || [], "model-properties"));
        box.appendChild(modelTable("Commands", [
          ["name", function (x) { return x.command_name; }], ["paras", function (x) { return paraList(x.paras); }],
          ["responses", function (x) { return (x.responses || []).map(function (r) { return (r.response_name || "") +
            "(" + paraList(r.paras) + ")"; }).join("; "); }]
        ], s.commands || [], "model-commands"));
        box.appendChild(modelTable("Events", [
          ["type", function (x) { return x.event_type; }], ["paras", function (x) { return paraList(x.paras); }]
        ], s.events || [], "model-events"));
        detail.appendChild(box);
      });
      var topics = p.topics || [];
      if (topics.length) {
        detail.appendChild(modelTable("Custom topics", [["name", function (x) { return x.name; }],
          ["permission", function (x) { return x.permission; }]], topics, "model-topics"));
      }
    });
  }

  // ---- OTA -------------------------------------------------------------------------------------

  function refreshOta() {
    var out = $("ota-result");
    return api("GET", "/ota").then(function (res) {
      if (!res.ok) { showResult(out, "error", errorText(res), res.data); return; }
      var data = res.data || {};
      if (!data.available) {
        fillTable($("ota-head"), $("ota-body"), []);
        fillTable($("ota-pkg-head"), $("ota-pkg-body"), []);
        showResult(out, "muted", "OTA: not available (" + (data.message || "no $ota service") + ")");
        return;
      }
      var tasks = Array.isArray(data.tasks) ? data.tasks : [];
      var packages = Array.isArray(data.packages) ? data.packages : [];
      showResult(out, "ok", "OTA: " + tasks.length + " task(s), " + packages.length + " package(s) - " +
        fmtDateTime(Date.now() / 1000));
      fillTable($("ota-head"), $("ota-body"), tasks, "task_id");
      fillTable($("ota-pkg-head"), $("ota-pkg-body"), packages, "package_id");
      var select = $("ota-task-package");
      var current = select.value;
      clear(select);
      packages.forEach(function (p) {
        select.appendChild(el("option", { value: String(p.package_id), text: p.version + " (" + p.kind + ", " +
          p.file_name + ")" }));
      });
      if (current) { select.value = current; }
    });
  }

  function uploadPackage(ev) {
    ev.preventDefault();
    var out = $("ota-upload-result");
    var file = $("ota-file").files[0];
    if (!file) { showResult(out, "error", "Choose a file."); return; }
    var q = query({ version: $("ota-version").value.trim(), kind: $("ota-kind").value, file_name: file.name });
    run($("ota-upload"), out, "Uploading...", api("POST", "/ota/packages" + q, undefined, file), function (data) {
      var p = data.package;
      showResult(out, "ok", "Package " + p.package_id + " uploaded: " + p.file_name + ", " + p.file_size +
        " bytes, sha256 " + p.sign);
      refreshOta().then(function () { $("ota-task-package").value = p.package_id; });
    });
  }

  function createTask(ev) {
    ev.preventDefault();
    var out = $("ota-task-result");
    var ids = $("ota-task-devices").value.split(",").map(function (s) { return s.trim(); })
      .filter(function (s) { return s; });
    var body = { package_id: $("ota-task-package").value, device_ids: ids, v2: $("ota-task-v2").checked };
    if (!body.package_id) { showResult(out, "error", "Upload a package first."); return; }
    run($("ota-task-send"), out, "Creating...", api("POST", "/ota/tasks", body), function (data) {
      var started = data.tasks.filter(function (t) { return t.task_id; }).length;
      showResult(out, started === data.tasks.length ? "ok" : "error",
        started + " of " + data.tasks.length + " task(s) started", data.tasks);
      refreshOta();
    });
  }

  // ---- bootstrap -------------------------------------------------------------------------------

  function refreshBootstrap() {
    var out = $("bs-result");
    return api("GET", "/bootstrap").then(function (res) {
      if (!res.ok) { showResult(out, "error", errorText(res)); return; }
      var data = res.data || {};
      var facts = $("bs-endpoint");
      clear(facts);
      clear($("bs-groups")); clear($("bs-policies")); clear($("bs-devices"));
      if (!data.available) { showResult(out, "muted", "Bootstrap: not available (" + (data.message || "") + ")"); return; }
      clear(out);
      out.className = "result";
      [["provisioning endpoint (MQTTS)", data.address], ["IoTDA address handed out", data.iotda_address]]
        .forEach(function (pair) {
          facts.appendChild(el("dt", { text: pair[0] }));
          facts.appendChild(el("dd", { className: "mono", text: String(pair[1] || "-") }));
        });
      (data.groups || []).forEach(function (g) {
        $("bs-groups").appendChild(el("tr", { "data-scope-id": String(g.scope_id) }, [
          el("td", { className: "mono", text: String(g.scope_id) }), el("td", { text: String(g.name || "") }),
          el("td", { text: String(g.auth_type || "") }), el("td", { className: "mono", text: String(g.product_id || "") }),
          el("td", { className: "mono", text: (g.devices || []).join(", ") || "-" })
        ]));
      });
      (data.policies || []).forEach(function (p) {
        $("bs-policies").appendChild(el("tr", { "data-policy-id": String(p.policy_id) }, [
          el("td", { className: "mono", text: String(p.name || p.policy_id) }), el("td", { text: String(p.keyword) }),
          el("td", { text: String(p.keyword_source) }), el("td", { text: String(p.priority) }),
          el("td", { className: "mono", text: String(p.product_id || "-") })
        ]));
      });
      (data.devices || []).forEach(function (id) { $("bs-devices").appendChild(el("li", { text: String(id) })); });
      if (!(data.devices || []).length) { $("bs-devices").appendChild(el("li", { className: "muted", text: "none" })); }
    });
  }

  function createGroup(ev) {
    ev.preventDefault();
    var out = $("bs-group-result");
    var body = { name: $("bs-group-name").value.trim() };
    var product = $("bs-group-product").value.trim();
    if (product) { body.product_id = product; }
    run($("bs-group-send"), out, "Creating...", api("POST", "/bootstrap/groups", body), function (data) {
      clear(out);
      out.className = "result ok";
      out.appendChild(el("div", { className: "result-title", text: "Registration group " + data.group.scope_id +
        " created; its group secret (shown once, keep it):" }));
      out.appendChild(el("pre", { className: "result-body secret", text: data.secret || "" }));
      refreshBootstrap();
    });
  }

  // ---- trace -----------------------------------------------------------------------------------

  function traceFilters() {
    return { device_id: $("trace-device").value.trim(), direction: $("trace-direction").value,
      kind: $("trace-kind").value, q: $("trace-text").value.trim() };
  }

  function resetTrace() {
    state.traceGen += 1;
    state.traceCursor = 0;
    clear($("trace-body"));
    $("trace-count").textContent = "";
    var f = traceFilters();
    $("export-json").href = API + "/trace/export" + query(Object.assign({ format: "json" }, f));
    $("export-csv").href = API + "/trace/export" + query(Object.assign({ format: "csv" }, f));
  }

  function pollTrace() {
    if ($("trace-pause").checked || !$("view-debug").classList.contains("active")) { return Promise.resolve(); }
    var gen = state.traceGen;
    var q = query(Object.assign({ after: state.traceCursor }, traceFilters()));
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
    var payloadCell = el("td", { className: "payload-cell" }, [payload]);
    if (e.encoding && e.encoding !== "utf-8") {
      payloadCell.insertBefore(el("span", { className: "badge", text: e.encoding }), payload);
    }
    return el("tr", {
      className: "trace-row " + (up ? "up" : "down"),
      "data-device-id": String(e.device_id || ""),
      "data-direction": String(e.direction || ""),
      "data-kind": String(e.kind || ""),
      "data-seq": String(e.seq || "")
    }, [
      el("td", { className: "mono nowrap when", title: String(e.time_iso || ""), text: fmtDateTime(e.time) }),
      el("td", { className: "mono", text: String(e.device_id || "") }),
      el("td", { className: "dir", text: up ? "\u2191 up" : "\u2193 down" }),
      el("td", { text: String(e.kind || "") }),
      el("td", { className: "mono topic", title: String(e.topic || ""), text: String(e.topic_suffix || e.topic || "") }),
      payloadCell
    ]);
  }

  // ---- session ---------------------------------------------------------------------------------

  function loadMeta() {
    return api("GET", "/meta").then(function (res) {
      if (!res.ok) { return; }
      $("logout").hidden = !res.data.login_required;
      var kinds = $("trace-kind");
      (res.data.trace_kinds || []).forEach(function (k) { kinds.appendChild(el("option", { value: k, text: k })); });
    });
  }

  function logout() {
    api("POST", "/logout", {}).then(function () { window.location.assign("/console/login"); });
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function every(ms, fn) {
    // Chained timeouts, not setInterval: a slow answer never piles up requests.
    function tick() {
      var next = function () { setTimeout(tick, ms); };
      var result;
      try { result = fn(); } catch (e) { result = null; }
      if (result && result.then) { result.then(next, next); } else { next(); }
    }
    tick();
  }

  // Refresh whatever auto-refreshing view is on screen.
  function autoRefresh() {
    var jobs = [];
    if (state.selected && isShown("panel-shadow") && $("shadow-auto").checked) { jobs.push(refreshShadow()); }
    if (state.selected && isShown("panel-chart") && $("chart-auto").checked) { jobs.push(refreshChart()); }
    if ($("view-ota").classList.contains("active") && $("ota-auto").checked) { jobs.push(refreshOta()); }
    if ($("view-bootstrap").classList.contains("active")) { jobs.push(refreshBootstrap()); }
    return Promise.all(jobs);
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // The helpers console_platform.js (the views of the newer platform features) builds on.
  window.IotdaConsole = {
    api: api, el: el, clear: clear, pretty: pretty, query: query, showResult: showResult, errorText: errorText,
    run: run, fillTable: fillTable, parseObject: parseObject, fmtDateTime: fmtDateTime, isShown: isShown,
    every: every, selected: function () { return state.selected; }
  };

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
      b.addEventListener("click", function () { showTab(b); });
    });
    Array.prototype.forEach.call(document.querySelectorAll(".view-btn"), function (b) {
      b.addEventListener("click", function () { showView(b); });
    });
    $("device-filter").addEventListener("input", renderDevices);
    $("add-form").addEventListener("submit", addDevice);
    $("add-device").addEventListener("toggle", loadProducts);
    $("cmd-form").addEventListener("submit", sendCommand);
    $("msg-form").addEventListener("submit", sendMessage);
    $("prop-set-form").addEventListener("submit", setProperties);
    $("prop-get-form").addEventListener("submit", getProperties);
    $("shadow-form").addEventListener("submit", setDesired);
    $("shadow-refresh").addEventListener("click", refreshShadow);
    $("chart-refresh").addEventListener("click", refreshChart);
    $("freeze-btn").addEventListener("click", function () { setFrozen(true); });
    $("unfreeze-btn").addEventListener("click", function () { setFrozen(false); });
    $("delete-btn").addEventListener("click", deleteDevice);
    $("reset-form").addEventListener("submit", resetSecret);
    $("products-refresh").addEventListener("click", refreshProducts);
    $("ota-refresh").addEventListener("click", refreshOta);
    $("ota-upload-form").addEventListener("submit", uploadPackage);
    $("ota-task-form").addEventListener("submit", createTask);
    $("bs-refresh").addEventListener("click", refreshBootstrap);
    $("bs-group-form").addEventListener("submit", createGroup);
    $("logout").addEventListener("click", logout);
    $("trace-filters").addEventListener("submit", function (ev) { ev.preventDefault(); resetTrace(); });
    ["trace-direction", "trace-kind"].forEach(function (id) { $(id).addEventListener("change", resetTrace); });
    ["trace-device", "trace-text"].forEach(function (id) { $(id).addEventListener("input", debounce(resetTrace, 300)); });
    $("trace-use-selected").addEventListener("click", function () {
      $("trace-device").value = state.selected || "";
      resetTrace();
    });
    $("trace-clear").addEventListener("click", function () {
      // keep the position: only newer entries will appear
      clear($("trace-body"));
      $("trace-count").textContent = "";
    });
    var wanted = new URLSearchParams(window.location.search).get("device");
    if (wanted) { selectDevice(wanted); }
    resetTrace();
    loadMeta();
    loadProducts();
    every(DEVICE_POLL_MS, refreshDevices);
    every(TRACE_POLL_MS, pollTrace);
    every(AUTO_REFRESH_MS, autoRefresh);
  });
})();
