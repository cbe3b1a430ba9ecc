"use strict";
// 承办单位工作台: a department's staff work their unit's tickets (gateway/console/unit.py): the lists
// by what waits on them, a ticket in full, as 主办 签收, 办理进展, 办结, 退回 and 延期申请, and as
// 协办 协办意见 for the 主办.
(function () {
  var STATUS = {  // as the unit reads the workflow (the centre's console says 已派单 for 已签收)
    received: "待签收", accepted: "已签收", processing: "办理中", resolved: "已办结",
    closed: "已归档", returned: "已退回", reopened: "重新办理", withdrawn: "已撤单"
  };
  var STEPS = Object.assign({}, STATUS, { received: "已受理" });  // in 办理记录: the centre filed it
  var state = { view: "received", rows: [], more: false, shown: null };
  var C = HotlineCommon;  // common.js
  var $ = C.$, el = C.el, pad2 = C.pad2, dayOf = C.dayOf, toast = C.toast, api = C.api,
    percent = C.percent;
  function dateTime(ts) {
    if (!ts) return "";
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }
  function statusOf(t) { return t.withdrawn_at ? STATUS.withdrawn : STATUS[t.status] || t.status; }
  // --- the lists ---------------------------------------------------------------------------------
  var waited = null;  // the 待签收 and 催办 counts last seen: more since is announced (提醒)
  function loadCounts() {
    return api("GET", "/unit/summary").then(function (d) {
      var c = d.counts;
      $("u-due-soon").hidden = !d.due_soon_hours;  // HOTLINE_DUE_SOON_HOURS 0: no such list
      document.querySelectorAll("[data-count]").forEach(function (b) {
        var n = c[b.getAttribute("data-count")] || 0;
        b.textContent = n ? String(n) : "";
        b.parentNode.classList.toggle("alert", n > 0 && b.getAttribute("data-count") !== "open");
      });
      // the tab's title says what waits to be taken on, seen from another tab or the taskbar
      document.title = (c.received_urgent ? "【紧急】" : "") + (c.received ? "（" + c.received + "件待签收）" : "") +
        "承办单位工作台 · 12345热线";
      var before = waited;
      waited = { received: c.received, urgent: c.received_urgent, urged: c.urged };
      if (before === null) return;
      if (c.received > before.received) {
        var urgent = c.received_urgent > before.urgent;
        C.alert({ urgent: urgent, tag: "hotline-unit-received",
                  title: (urgent ? "【紧急】" : "") + "12345 承办单位工作台：" + (c.received - before.received) + " 件新工单待签收",
                  body: "共 " + c.received + " 件待签收" + (c.received_urgent ? "（紧急 " + c.received_urgent + " 件）" : "") + "，点击查看",
                  open: function () { pick("received"); } });
      } else if (c.urged > before.urged) {  // a citizen pressed for one more open ticket (催办)
        C.alert({ urgent: false, tag: "hotline-unit-urged",
                  title: "12345 承办单位工作台：市民催办 " + (c.urged - before.urged) + " 件工单",
                  body: "共 " + c.urged + " 件催办未办结，点击查看", open: function () { pick("urged"); } });
      }
    }).catch(function (e) { toast(e.message, true); });
  }
  // 本单位考核: the unit's row of the centre's 承办单位考核, with what each figure means
  function loadStats() {
    return api("GET", "/unit/stats?days=" + $("u-stats-days").value).then(function (d) {
      var u = d.unit || {};
      var weights = Object.keys(d.weights || {}).map(function (k) { return k + Math.round(d.weights[k] * 100) + "%"; }).join("、");
      C.fields($("u-stats-figures"), {}, [
        ["受理", (u.filed || 0) + " 件（主办 " + (u.primary || 0) + " 件）"],
        ["办结", (u.done || 0) + " 件，办结率 " + percent(u.done_rate)],
        ["按期办结率", percent(u.on_time_rate) + (u.done_late ? "（超期办结 " + u.done_late + " 件）" : "")],
        ["超期未办结", (u.overdue || 0) + " 件"],
        ["响应率", percent(u.respond_rate) + (u.unanswered ? "（超时未签收 " + u.unanswered + " 件）" : "")],
        ["退回", (u.returns || 0) + " 次"],
        ["延期", (u.extended || 0) + " 件"],
        ["催办未办结", (u.urged || 0) + " 件"],
        ["回访参评", (u.rated || 0) + " 件"],
        ["满意率", percent(u.satisfaction)],
        ["解决率", percent(u.solved_rate)],
        ["综合得分", u.score === null || u.score === undefined ? "—（回访不足或工单少于" + d.score_min_tickets + "件）"
          : u.score.toFixed(1) + (weights ? "（" + weights + "）" : "")]
      ]);
    }).catch(function (e) { toast(e.message, true); });
  }
  function load(more) {
    var stats = state.view === "stats";
    $("u-stats").hidden = !stats;
    [$("u-form"), document.querySelector("#unit .results")].forEach(function (x) { x.hidden = stats; });
    if (stats) { $("u-empty").hidden = true; $("u-more").hidden = true; return loadStats(); }
    var params = new URLSearchParams({ view: state.view });
    var q = $("u-q").value.trim();
    if (q) params.set("q", q);
    if (more) params.set("offset", String(state.rows.length));
    return api("GET", "/unit/tickets?" + params.toString()).then(function (d) {
      state.rows = more ? state.rows.concat(d.tickets) : d.tickets;
      state.more = d.more;
      renderList();
      if (!more && state.rows.length === 1 && q) show(state.rows[0].ticket_id);
    }).catch(function (e) { toast(e.message, true); });
  }
  // 导出: the list shown (its words too), filed in the period picked, as the centre's CSV file
  // (common.js's downloadCsv counts the rows as they come)
  function exportList() {
    var params = new URLSearchParams({ view: state.view, days: $("u-export-days").value });
    var q = $("u-q").value.trim();
    if (q) params.set("q", q);
    C.downloadCsv($("u-export"), "/api/console/unit/tickets.csv?" + params.toString(), "tickets.csv");
  }
  function renderList() {
    var tb = $("u-results");
    tb.textContent = "";
    state.rows.forEach(function (t) {
      var tr = el("tr");
      tr.setAttribute("data-ticket-id", t.ticket_id);
      tr.classList.toggle("selected", t.ticket_id === state.shown);
      tr.tabIndex = 0;
      var id = el("td", "tid", t.ticket_id);
      if (t.urgent) id.appendChild(el("span", "badge urgent", "紧急"));
      if (!t.primary) id.appendChild(el("span", "badge", "协办"));
      if (t.overdue) id.appendChild(el("span", "badge overdue", "超期"));
      if (t.due_soon) id.appendChild(el("span", "badge due-soon", "即将超期"));
      if (t.extension_pending) id.appendChild(el("span", "badge asked", "延期待审"));
      if (t.urges) id.appendChild(el("span", "badge urged", "催办" + t.urges + "次"));
      if (t.primary && t.assists) id.appendChild(el("span", "badge assisted", "协办意见" + t.assists + "条"));
      tr.appendChild(id);
      tr.appendChild(el("td", "", dateTime(t.created_at)));
      tr.appendChild(el("td", "", t.title || "（无标题）"));
      tr.appendChild(el("td", "", (t.category || []).join(" / ")));
      tr.appendChild(el("td", "", statusOf(t)));
      tr.appendChild(el("td", "", t.due_at ? dateTime(t.due_at) + (t.extended_until ? "（已延期）" : "") : ""));
      tr.addEventListener("click", function () { show(t.ticket_id); });
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") show(t.ticket_id); });
      tb.appendChild(tr);
    });
    $("u-empty").hidden = state.rows.length > 0;
    $("u-more").hidden = !state.more;
  }

  // --- one ticket --------------------------------------------------------------------------------
  function show(id) {
    state.shown = id;
    document.querySelectorAll("#u-results tr").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-ticket-id") === id);
    });
    return api("GET", "/unit/tickets/" + encodeURIComponent(id)).then(function (t) {
      if (state.shown === id) render(t);
    }).catch(function (e) { toast(e.message, true); });
  }
  // 联系电话 shows masked (138****5678), as do the numbers in the citizen's words; 查看完整号码 asks
  // for them whole, which the centre audits, and the page keeps them while open (the ticket shown
  // again after a step still shows them)
  var revealed = {};
  function revealContact(t) {
    var dd = Array.prototype.filter.call($("ud-fields").querySelectorAll("dt"), function (dt) {
      return dt.textContent === "联系电话";
    })[0].nextElementSibling;
    var btn = el("button", "link", "查看完整号码");
    btn.type = "button";
    btn.id = "ud-contact";
    btn.title = "查看群众的完整联系电话（将记入操作审计）";
    btn.addEventListener("click", function () {
      btn.disabled = true;
      api("POST", "/unit/tickets/" + encodeURIComponent(t.ticket_id) + "/contact", {}).then(function (d) {
        revealed[t.ticket_id] = d;
        if (state.shown === t.ticket_id) render(t);
      }).catch(function (e) { btn.disabled = false; toast(e.message, true); });
    });
    dd.appendChild(document.createTextNode(" "));
    dd.appendChild(btn);
  }
  function render(t) {
    var others = (t.followups || []).filter(function (f) { return f.kind !== "urge" && f.kind !== "info"; });
    var whole = revealed[t.ticket_id];
    if (whole && whole.followups.length !== (t.followups || []).length - others.length) {
      whole = null;  // the citizens wrote since: shown masked again, to ask for once more
      delete revealed[t.ticket_id];
    }
    if (whole) {  // the numbers asked for: the citizens' follow-ups with them, the other steps as they are
      t = Object.assign({}, t, { contact: whole.contact, description: whole.description, contact_masked: false,
        followups: others.concat(whole.followups) });
    }
    $("ud-empty").hidden = true;
    $("ud").hidden = false;
    $("ud").setAttribute("data-ticket-id", t.ticket_id);
    $("ud-title").textContent = t.ticket_id + " · " + (t.title || "（无标题）");
    C.fields($("ud-fields"), t, [
      ["状态", statusOf(t)],
      ["本单位", t.primary ? "主办" : "协办（由主办单位 " + t.departments[0] + " 办理）"],
      ["承办部门", (t.departments || []).join("、")],
      ["受理时间", dateTime(t.created_at)]
    ].concat(C.timeRows(t, dateTime), C.matterRows(t), [
      ["问题描述", t.description],
      ["协办意见", t.assists ? t.assists + " 条（见办理记录）" : ""],
      ["附件", t.attachments ? t.attachments + " 个" : ""],
      ["市民评价", t.rating ? t.rating + (t.rating_comment ? "：" + t.rating_comment : "") : ""],
      ["解决情况", t.solved === true ? "已解决" : t.solved === false ? "未解决" : ""]
    ]), "/api/console/unit/tickets/" + encodeURIComponent(t.ticket_id) + "/attachments/");
    if (t.contact_masked) revealContact(t);
    var ol = $("ud-history");
    ol.textContent = "";
    var steps = t.history.concat(t.followups || []);
    steps.sort(function (a, b) { return a.at - b.at; });
    steps.forEach(function (h) {
      var li = el("li");
      li.setAttribute("data-kind", h.kind || "status");
      li.appendChild(el("span", "muted", dateTime(h.at)));
      li.appendChild(el("b", "", C.stepLabel(h, STEPS)));
      if (h.note) li.appendChild(el("span", "", h.note));
      if (h.ticket_id && h.ticket_id !== t.ticket_id) {  // a repeat's citizen: handled on this main
        li.classList.add("merged-followup");
        li.appendChild(el("span", "muted small", "（并入工单 " + h.ticket_id + "）"));
      }
      ol.appendChild(li);
    });
    var box = $("ud-actions");
    box.textContent = "";
    if (t.merged_into) {
      box.appendChild(el("p", "muted small", "本工单已并入工单 " + t.merged_into + "，随主单办理"));
    } else if (!t.primary) {
      box.appendChild(el("p", "muted small", "本单位为协办单位：请配合主办单位办理，将协办意见提交给主办单位；办理进展和结果由主办单位答复市民"));
      if (t.status !== "resolved" && t.status !== "closed") box.appendChild(assistRow(t));
    } else {
      actions(t).forEach(function (row) { box.appendChild(row); });
    }
    box.appendChild(extensions(t));
  }
  // One row: (a day,) words, the button; ``o.path`` under the ticket, ``o.body(day, words)``.
  function row(t, o) {
    var r = el("div", "status-row " + o.cls);
    var day = null;
    if (o.day) {
      day = el("input");
      day.type = "date";
      day.min = dayOf(Math.max(Date.now() / 1000, t.due_at || 0));
      day.setAttribute("aria-label", o.day);
      r.appendChild(day);
    }
    var words = el("input");
    words.placeholder = o.placeholder;
    words.maxLength = o.maxLength || 200;
    if (o.list) words.setAttribute("list", o.list);
    var btn = el("button", o.primary ? "primary" : "", o.label);
    btn.type = "button";
    btn.addEventListener("click", function () {
      var problem = o.check ? o.check(day, words) : "";
      if (problem) { toast(problem, true); return; }
      if (o.confirm && !window.confirm(o.confirm)) return;
      btn.disabled = true;
      api("POST", "/unit/tickets/" + encodeURIComponent(t.ticket_id) + o.path, o.body(day, words)).then(function () {
        toast(o.ok);
        loadCounts(); load(false); show(t.ticket_id);
      }).catch(function (e) { toast(e.message, true); btn.disabled = false; });
    });
    r.appendChild(words); r.appendChild(btn);
    return r;
  }
  function actions(t) {
    var open = t.status !== "resolved" && t.status !== "closed";
    var rows = [];
    if (t.status === "received" || t.status === "reopened") {
      rows.push(row(t, { cls: "accept-row", placeholder: "签收说明（选填，市民可见）", label: "签收", primary: true,
        path: "/accept", ok: "已签收，请尽快联系市民办理", body: function (d, w) { return { note: w.value }; } }));
    }
    if (open && t.status !== "returned") {
      rows.push(row(t, { cls: "progress-row", placeholder: "办理进展（市民可见，状态不变）", maxLength: 2000, label: "发送进展",
        path: "/notes", ok: "办理进展已发送给市民",
        check: function (d, w) { return w.value.trim() ? "" : "请填写办理进展"; },
        body: function (d, w) { return { note: w.value }; } }));
    }
    if (t.status === "accepted" || t.status === "processing" || t.status === "reopened") {
      rows.push(row(t, { cls: "resolve-row", placeholder: "办理结果（市民可见，随后回访）", maxLength: 2000, label: "办结",
        path: "/resolve", ok: "已办结，市民将收到办理结果和回访",
        check: function (d, w) { return w.value.trim() ? "" : "请填写办理结果"; },
        confirm: "办结后市民将收到办理结果并进行满意度回访。确定办结工单 " + t.ticket_id + " 吗？",
        body: function (d, w) { return { note: w.value }; } }));
    }
    if (t.status === "received" || t.status === "accepted" || t.status === "processing") {
      rows.push(row(t, { cls: "return-row", placeholder: "退回理由（如：非本单位职责）", label: "退回", list: "return-reasons",
        path: "/return", ok: "已退回，12345中心将重新派单",
        check: function (d, w) { return w.value.trim() ? "" : "请填写退回理由"; },
        confirm: "退回后由12345中心重新派单。确定退回工单 " + t.ticket_id + " 吗？",
        body: function (d, w) { return { reason: w.value }; } }));
    }
    return rows;
  }
  // 协办意见: a 协办 tells the 主办 (and the centre) what it did or found; the citizen does not hear it
  function assistRow(t) {
    return row(t, { cls: "assist-row", placeholder: "协办意见（供主办单位和12345中心参考，市民不可见）", maxLength: 2000,
      label: "提交协办意见", primary: true, path: "/assist", ok: "协办意见已提交给主办单位",
      check: function (d, w) { return w.value.trim() ? "" : "请填写协办意见"; },
      body: function (d, w) { return { note: w.value }; } });
  }
  // 延期申请: the unit asks the centre for a later 办理时限; the citizen hears it only once granted
  function extensions(t) {
    var made = C.extensionBox(t, {
      none: "申请延期", when: dateTime,
      outcome: function (r) {
        return r.outcome === "pending" ? "待12345中心审核" : r.outcome === "approved" ? "已批准，延至 " + dayOf(r.granted_until - 1)
          : r.outcome === "rejected" ? "未批准：" + r.answer : "已失效";
      }
    });
    var box = made.box, waiting = made.waiting;
    if (!waiting && t.primary && !t.merged_into && t.due_at && t.status !== "resolved" && t.status !== "closed") {
      box.appendChild(row(t, { cls: "ask-row", day: "申请延至", placeholder: "申请理由（供12345中心审核）", list: "extend-reasons",
        label: "提交申请", path: "/extension-request", ok: "延期申请已提交，等待12345中心审核",
        check: function (d, w) { return !d.value ? "请选择申请延至的日期" : w.value.trim() ? "" : "请填写申请理由"; },
        body: function (d, w) { return { until: d.value, reason: w.value }; } }));
    }
    return box;
  }

  // --- start -------------------------------------------------------------------------------------
  function pick(view) {
    document.querySelectorAll("#u-views .tab").forEach(function (x) {
      x.classList.toggle("active", x.getAttribute("data-view") === view);
    });
    state.view = view;
    load(false);
  }
  document.querySelectorAll("#u-views .tab").forEach(function (tab) {
    tab.addEventListener("click", function () { pick(tab.getAttribute("data-view")); });
  });
  C.alertsButton($("alerts-btn"), "新工单提醒");
  $("u-form").addEventListener("submit", function (ev) { ev.preventDefault(); load(false); });
  $("u-stats-days").addEventListener("change", loadStats);
  $("u-export").addEventListener("click", exportList);
  $("u-more").addEventListener("click", function () { load(true); });
  $("logout").addEventListener("click", function () {
    api("POST", "/logout", {}).then(function () { window.location.href = "/console/"; });
  });
  api("GET", "/me").then(function (d) {
    C.setCsrf(d.csrf);
    C.offer($("extend-reasons"), C.EXTEND_REASONS);
    if (d.user.role !== "department") { window.location.href = "/console/"; return; }
    $("me").textContent = $("me").title = d.user.unit + " · " + d.user.display_name;  // (cut short when long)
    loadCounts();
    load(false);
    setInterval(loadCounts, 30000);  // what newly waits on the unit (with 提醒 on: a tone, a notice)
  }).catch(function () {});
})();
