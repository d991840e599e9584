// IoTDA emulator web console: the views of the newer platform features (remote configuration, broadcast,
// tunnels, asynchronous commands, groups and tags). Built on the helpers console.js exposes as IotdaConsole.
// Device-provided text goes into the page with textContent only, as in console.js.
"use strict";

(function () {
  var C = window.IotdaConsole;
  var REFRESH_MS = 2000;
  var el = C.el, clear = C.clear, api = C.api, showResult = C.showResult;

  function $(id) { return document.getElementById(id); }

  function viewShown(id) { return $(id).classList.contains("active"); }

  function idList(text) {
    return text.split(",").map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function cell(text, attrs) {
    var a = attrs || {};
    a.text = text === null || text === undefined ? "" :
      (typeof text === "object" ? JSON.stringify(text) : String(text));
    return el("td", a);
  }

  // "20261206T221655Z" (IoTDA's time format) -> local date and time.
  function iotTime(value) {
    var m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(value || "");
    if (!m) { return value || ""; }
    return C.fmtDateTime(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000).slice(0, 19);
  }

  // A refresh whose answer is shown in `out` only when it failed.
  function load(path, out, render) {
    return api("GET", path).then(function (res) {
      if (!res.ok) { showResult(out, "error", C.errorText(res)); return; }
      render(res.data || {});
    });
  }

  // ---- remote configuration --------------------------------------------------------------------

  function refreshConfig() {
    return load("/config-tasks", $("cfg-result"), function (data) {
      var body = $("cfg-body");
      clear(body);
      var tasks = data.tasks || [];
      $("cfg-count").textContent = "(" + tasks.length + ") - " + C.fmtDateTime(Date.now() / 1000);
      tasks.forEach(function (t) {
        (t.task_details || []).forEach(function (d, i) {
          body.appendChild(el("tr", { "data-task-id": String(t.task_id), "data-device-id": String(d.device_id) }, [
            cell(i === 0 ? t.task_name : "", { className: "mono", title: String(t.task_id) }),
            cell(i === 0 ? t.status + " (" + t.success + " ok / " + t.fail + " failed / " + t.processing +
              " in progress)" : "", { "data-col": "task_status" }),
            cell(d.device_id, { className: "mono" }),
            cell(d.status, { "data-col": "status" }),
            cell(d.result_code, { "data-col": "result_code" }),
            cell(d.description, { "data-col": "description" }),
            cell(d.sent_times, { "data-col": "sent_times", title: iotTime(d.last_sent_time) }),
            cell(i === 0 ? t.config_content : "", { className: "mono" })
          ]));
        });
      });
    });
  }

  function createConfigTask(ev) {
    ev.preventDefault();
    var out = $("cfg-result");
    var content = C.parseObject($("cfg-content").value, "config_content", out);
    if (content === null) { return; }
    var body = { config_content: content, device_ids: idList($("cfg-devices").value) };
    var days = $("cfg-timeout").value.trim();
    if (days) { body.timeout_days = Number(days); }
    C.run($("cfg-send"), out, "Creating...", api("POST", "/config-tasks", body), function (data) {
      showResult(out, "ok", "Task " + data.task.task_name + " created for " + data.task.total + " device(s): " +
        "config_update sent to the online ones");
      refreshConfig();
    });
  }

  // ---- broadcast -------------------------------------------------------------------------------

  function refreshBroadcasts() {
    return load("/broadcasts", $("bc-result"), function (data) {
      var rows = (data.broadcasts || []).map(function (b) {
        return { message_id: b.message_id, topic_full_name: b.topic_full_name, created: iotTime(b.created_time),
          ttl: b.ttl, size: b.size, subscribers: (b.subscribers || []).join(", ") };
      });
      C.fillTable($("bc-head"), $("bc-body"), rows, "message_id");
    });
  }

  function sendBroadcast(ev) {
    ev.preventDefault();
    var out = $("bc-result");
    var body = { topic_full_name: $("bc-topic").value.trim(), payload: $("bc-payload").value,
      ttl: Number($("bc-ttl").value || 0) };
    var mid = $("bc-id").value.trim();
    if (mid) { body.message_id = mid; }
    C.run($("bc-send"), out, "Sending...", api("POST", "/broadcasts", body), function (data) {
      var b = data.broadcast;
      showResult(out, "ok", "Broadcast " + b.message_id + " sent on " + b.topic_full_name + " to " +
        b.subscribers.length + " subscribed device(s)", b.subscribers);
      refreshBroadcasts();
    });
  }

  // ---- tunnels ---------------------------------------------------------------------------------

  function sideText(side) { return side ? side.status : ""; }

  function refreshTunnels() {
    return load("/tunnels", $("tun-result"), function (data) {
      var body = $("tun-body");
      clear(body);
      (data.tunnels || []).forEach(function (t) {
        var id = String(t.tunnel_id);
        var close = el("button", { type: "button", className: "small", "data-action": "close", text: "Close" });
        var del = el("button", { type: "button", className: "small danger", "data-action": "delete", text: "Delete" });
        close.disabled = t.status === "CLOSED";
        close.addEventListener("click", function () { tunnelAction(id, "close", close); });
        del.addEventListener("click", function () { tunnelAction(id, "delete", del); });
        var answer = t.device_answer ? "result_code " + t.device_answer.result_code +
          (t.device_answer.description ? ": " + t.device_answer.description : "") : "";
        body.appendChild(el("tr", { "data-tunnel-id": id, "data-device-id": String(t.device_id) }, [
          cell(id, { className: "mono", title: String(t.connect || "") }),
          cell(t.device_id, { className: "mono" }),
          cell(t.status, { "data-col": "status" }),
          cell(sideText(t.device_connect_state), { "data-col": "device_side" }),
          cell(sideText(t.source_connect_state), { "data-col": "source_side" }),
          cell(answer, { "data-col": "answer" }),
          cell(iotTime(t.create_time)), cell(iotTime(t.closed_time)),
          el("td", {}, [el("span", { className: "buttons" }, [close, del])])
        ]));
      });
    });
  }

  function tunnelAction(id, action, button) {
    var out = $("tun-result");
    var call = action === "close" ? api("POST", "/tunnels/" + encodeURIComponent(id) + "/close", {}) :
      api("DELETE", "/tunnels/" + encodeURIComponent(id));
    C.run(button, out, action === "close" ? "Closing..." : "Deleting...", call, function () {
      showResult(out, "ok", "Tunnel " + id + (action === "close" ? " closed" : " deleted"));
      refreshTunnels();
    });
  }

  function openTunnel(ev) {
    ev.preventDefault();
    var out = $("tun-result");
    var device = $("tun-device").value.trim();
    C.run($("tun-send"), out, "Opening...", api("POST", "/tunnels", { device_id: device }), function (data) {
      clear(out);
      out.className = "result ok";
      out.appendChild(el("div", { className: "result-title", text: "Tunnel " + data.tunnel.tunnel_id + " opened for " +
        data.tunnel.device_id + ": the device was sent tunnel_notify" }));
      out.appendChild(el("div", { className: "small", text: "Source token (shown once, keep it):" }));
      out.appendChild(el("pre", { id: "tun-new-token", className: "result-body secret",
        text: data.tunnel_access_token }));
      out.appendChild(el("div", { className: "small",
        text: "Connect a local port, then ssh -p " + data.listen_port + " USER@localhost:" }));
      out.appendChild(el("pre", { id: "tun-connect", className: "result-body", text: data.connect }));
      refreshTunnels();
    });
  }

  // ---- asynchronous commands -------------------------------------------------------------------

  var COMMAND_COLS = ["command_id", "command_name", "status", "send_strategy", "created_time", "sent_time",
    "response_time", "result"];
  var MESSAGE_COLS = ["message_id", "name", "status", "error_info", "created_time", "finished_time", "topic"];

  function pick(rows, cols) {
    return rows.map(function (r) {
      var out = {};
      cols.forEach(function (c) {
        if (!(c in r)) { return; }
        out[c] = /_time$/.test(c) && typeof r[c] === "string" ? iotTime(r[c]) : r[c];
      });
      return out;
    });
  }

  function refreshAsync() {
    var id = C.selected();
    if (!id) { return Promise.resolve(); }
    return load("/devices/" + encodeURIComponent(id) + "/async-commands", $("async-result"), function (data) {
      if (C.selected() !== id) { return; }     // a late answer for the device selected before
      [["async-queue", data.queue, COMMAND_COLS, "command_id"], ["async-history", data.history, COMMAND_COLS,
        "command_id"], ["async-messages", data.messages, MESSAGE_COLS, "message_id"]].forEach(function (t) {
        var rows = pick(t[1] || [], t[2]);
        C.fillTable($(t[0] + "-head"), $(t[0]), rows, t[3]);
        if (!rows.length) { $(t[0]).appendChild(el("tr", {}, [el("td", { className: "muted", text: "none" })])); }
      });
      $("async-updated").textContent = id + " - " + C.fmtDateTime(Date.now() / 1000);
    });
  }

  function sendAsync(ev) {
    ev.preventDefault();
    var out = $("async-result");
    var id = C.selected();
    if (!id) { showResult(out, "error", "Select a device first."); return; }
    var paras = C.parseObject($("async-paras").value, "paras", out);
    if (paras === null) { return; }
    var body = { command_name: $("async-name").value.trim(), paras: paras, send_strategy: $("async-strategy").value };
    var service = $("async-service").value.trim();
    if (service) { body.service_id = service; }
    var expire = $("async-expire").value.trim();
    if (expire) { body.expire_time = Number(expire); }
    C.run($("async-send"), out, "Sending...", api("POST", "/devices/" + encodeURIComponent(id) + "/async-commands",
      body), function (data) {
      showResult(out, "ok", "Command " + data.command.command_id + ": " + data.command.status);
      refreshAsync();
    });
  }

  // ---- groups and tags -------------------------------------------------------------------------

  function refreshGroups() {
    return load("/groups", $("grp-result"), function (data) {
      var body = $("grp-body");
      var select = $("grp-add-group");
      var current = select.value;
      clear(body); clear(select);
      (data.groups || []).forEach(function (g) {
        body.appendChild(el("tr", { "data-group-id": String(g.group_id), "data-name": String(g.name) }, [
          cell(g.name), cell(g.group_type, { "data-col": "type" }),
          cell(g.dynamic_group_rule || "", { className: "mono" }),
          cell((g.members || []).join(", ") || "-", { className: "mono", "data-col": "members" })
        ]));
        if (g.group_type === "STATIC") {
          select.appendChild(el("option", { value: String(g.group_id), text: g.name }));
        }
      });
      if (current) { select.value = current; }
      var tags = $("tag-body");
      clear(tags);
      var byDevice = data.tags || {};
      Object.keys(byDevice).sort().forEach(function (id) {
        tags.appendChild(el("tr", { "data-device-id": id }, [
          cell(id, { className: "mono" }),
          cell(byDevice[id].map(function (t) { return t.tag_key + "=" + (t.tag_value || ""); }).join(", "),
            { "data-col": "tags" })
        ]));
      });
    });
  }

  function createGroup(ev) {
    ev.preventDefault();
    var out = $("grp-result");
    var body = { name: $("grp-name").value.trim(), group_type: $("grp-type").value };
    var rule = $("grp-rule").value.trim();
    if (rule) { body.dynamic_group_rule = rule; }
    C.run($("grp-send"), out, "Creating...", api("POST", "/groups", body), function (data) {
      showResult(out, "ok", "Group " + data.group.name + " created (" + data.group.group_type + ")");
      refreshGroups();
    });
  }

  function addToGroup(ev) {
    ev.preventDefault();
    var out = $("grp-add-result");
    var group = $("grp-add-group").value;
    if (!group) { showResult(out, "error", "Create a static group first."); return; }
    var body = { device_id: $("grp-add-device").value.trim() };
    C.run($("grp-add-send"), out, "Adding...", api("POST", "/groups/" + encodeURIComponent(group) + "/devices", body),
      function () {
        showResult(out, "ok", "Device " + body.device_id + " added");
        refreshGroups();
      });
  }

  function tagDevice(ev) {
    ev.preventDefault();
    var out = $("tag-result");
    var device = $("tag-device").value.trim();
    var body = { tag_key: $("tag-key").value.trim(), tag_value: $("tag-value").value.trim() };
    C.run($("tag-send"), out, "Tagging...", api("POST", "/devices/" + encodeURIComponent(device) + "/tags", body),
      function (data) {
        showResult(out, "ok", "Tags of " + data.device_id + ": " + data.tags.map(function (t) {
          return t.tag_key + "=" + (t.tag_value || "");
        }).join(", "));
        refreshGroups();
      });
  }

  // ---- wiring ----------------------------------------------------------------------------------

  var VIEWS = { "view-config": refreshConfig, "view-broadcast": refreshBroadcasts, "view-tunnels": refreshTunnels,
    "view-groups": refreshGroups };

  function autoRefresh() {
    var jobs = [];
    if (viewShown("view-config") && $("cfg-auto").checked) { jobs.push(refreshConfig()); }
    if (viewShown("view-tunnels") && $("tun-auto").checked) { jobs.push(refreshTunnels()); }
    if (C.isShown("panel-async") && $("async-auto").checked) { jobs.push(refreshAsync()); }
    return Promise.all(jobs);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Object.keys(VIEWS).forEach(function (view) {
      // console.js switches the view on the same click (its listener was added first)
      document.querySelector('.view-btn[data-view="' + view + '"]').addEventListener("click", function () {
        var selected = C.selected();
        ["cfg-devices", "tun-device", "grp-add-device", "tag-device"].forEach(function (id) {
          if (selected && !$(id).value) { $(id).value = selected; }
        });
        VIEWS[view]();
      });
    });
    $("tab-async").addEventListener("click", refreshAsync);
    $("device-list").addEventListener("click", function () {
      if (C.isShown("panel-async")) { refreshAsync(); }
    });
    $("cfg-form").addEventListener("submit", createConfigTask);
    $("cfg-refresh").addEventListener("click", refreshConfig);
    $("bc-form").addEventListener("submit", sendBroadcast);
    $("bc-refresh").addEventListener("click", refreshBroadcasts);
    $("tun-form").addEventListener("submit", openTunnel);
    $("tun-refresh").addEventListener("click", refreshTunnels);
    $("async-form").addEventListener("submit", sendAsync);
    $("async-refresh").addEventListener("click", refreshAsync);
    $("grp-form").addEventListener("submit", createGroup);
    $("grp-add-form").addEventListener("submit", addToGroup);
    $("tag-form").addEventListener("submit", tagDevice);
    $("grp-refresh").addEventListener("click", refreshGroups);
    C.every(REFRESH_MS, autoRefresh);
  });
})();
