/* What both console pages use (index.html, the centre's; unit.html, a department's): building the
 * page from text (never HTML), the console API with the session's CSRF token, a toast, calendar
 * days, rates, a ticket's fields and files, its 延期申请, 提醒, 导出. Plain JS, no build step. */
"use strict";
var HotlineCommon = (function () {
  var csrf = "";
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  // 延期 reasons offered as one types (the centre grants, a unit asks: the same words)
  var EXTEND_REASONS = ["需协调多个部门联合处置", "涉及工程施工，办理周期较长", "需报上级部门审批", "情况复杂，需进一步调查核实"];
  function offer(list, words) {  // a datalist's options
    words.forEach(function (w) { var o = el("option"); o.value = w; list.appendChild(o); });
  }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function dayOf(ts) {  // the browser's (the centre's) calendar day of a moment, as a date input takes it
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate());
  }
  function percent(x) { return x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10) + "%"; }  // 0.875: 87.5%
  function toast(text, isError) {
    var t = $("toast");
    t.textContent = text;
    t.className = "toast" + (isError ? " error" : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 3500);
  }
  // /api/console + path; a state-changing request carries the CSRF token (setCsrf, from /me);
  // 401 goes back to the login page; another refusal throws its detail (and status)
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch("/api/console" + path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { window.location.href = "/console/"; throw new Error("未登录"); }
        if (!r.ok) { var e = new Error(data.detail || ("请求失败（" + r.status + "）")); e.status = r.status; throw e; }
        return data;
      });
    });
  }
  // A ticket's files as thumbnails, each opened full size in a new tab; one that is no picture (a
  // voice note) or no longer kept stays a link saying so
  function ticketFiles(base, count) {
    var row = el("div", "media ticket-files");
    for (var i = 0; i < count; i++) {
      (function (link, n) {
        link.href = base + n;
        link.target = "_blank";
        link.rel = "noopener";
        var img = el("img");
        img.alt = "［附件" + (n + 1) + "］";
        img.src = base + n + "?thumb=1";  // small; the link opens it whole
        img.addEventListener("error", function () { link.textContent = "［附件" + (n + 1) + "（非图片，或已过期）］"; });
        link.appendChild(img);
        row.appendChild(link);
      })(el("a", "attachment"), i);
    }
    return row;
  }
  // Rows both pages show of a ticket: its times (``when``: the page's way of writing a moment) with
  // the citizen's 催办, and who to call about what, where
  function timeRows(t, when) {
    return [
      ["办理时限", t.due_at ? when(t.due_at) + (t.extended_until ? "（已延期）" : "") +
        (t.overdue ? "（已超期）" : t.due_soon ? "（即将超期）" : "") : ""],
      ["签收时间", t.responded_at ? when(t.responded_at) + (t.responded_late ? "（超时签收）" : "")
        : t.unanswered ? "超过响应时限尚未签收" : ""],
      ["办结时间", t.done_at ? when(t.done_at) + (t.done_late ? "（超期办结）" : "（按期办结）") : ""],
      ["市民催办", t.urges ? t.urges + " 次（最近 " + when(t.urged_at) + "）" : ""]
    ];
  }
  function matterRows(t) {
    return [
      ["联系电话", t.contact || "未留"],
      ["诉求类型", (t.request_type || "—") + (t.urgent ? "（紧急）" : "")],
      ["分类", (t.category || []).join(" / ") || "—"],
      ["地点", t.location || "—"]
    ];
  }
  // A ticket's fields ([label, text], an empty text left out) into ``dl``, then its photos, if any
  // (``files``: the URL its n-th file is under), whether or not the conversation is still held
  function fields(dl, t, pairs, files) {
    dl.textContent = "";
    pairs.forEach(function (pair) {
      if (!pair[1]) return;
      dl.appendChild(el("dt", "", pair[0]));
      dl.appendChild(el("dd", "", pair[1]));
    });
    if (t.attachments) {
      dl.appendChild(el("dt", "", "附件查看"));
      dl.appendChild(el("dd")).appendChild(ticketFiles(files, t.attachments));
    }
  }
  // A ticket's 延期申请 as a box (open while one waits): each with its unit, the day asked, its reason,
  // when (``o.when``) and what became of it (``o.outcome``); ``o.none``: the summary of a ticket without any
  function extensionBox(t, o) {
    var asked = t.extension_requests || [];
    var waiting = asked.filter(function (r) { return r.outcome === "pending"; })[0];
    var box = el("details", "extension-box");
    box.open = !!waiting;
    box.appendChild(el("summary", "", waiting ? "延期申请（待审核）" : asked.length ? "延期申请（" + asked.length + "次）" : o.none));
    var ul = el("ul", "extension-list");
    asked.forEach(function (r) {
      var li = el("li");
      li.setAttribute("data-outcome", r.outcome);
      li.appendChild(el("b", "", r.unit + " 申请延至 " + dayOf(r.until - 1)));
      li.appendChild(el("span", "", "（" + r.reason + "）"));
      li.appendChild(el("span", "muted", " " + o.when(r.at) + " · "));
      li.appendChild(el("span", "outcome", o.outcome(r)));
      ul.appendChild(li);
    });
    if (asked.length) box.appendChild(ul);
    return { box: box, waiting: waiting };
  }
  // 修改密码 (the topbar's #password-btn on either page): the current password, the new one twice;
  // this browser goes on with the session the answer brings, the account's others sign in again
  function passwordDialog() {
    var dialog = el("dialog", "password-dialog");
    dialog.id = "password-dialog";
    var form = el("form");
    form.appendChild(el("h2", "", "修改密码"));
    var fields = [["pw-current", "当前密码", "current-password"], ["pw-new", "新密码（至少10位，勿用常见密码）", "new-password"],
                  ["pw-again", "再次输入新密码", "new-password"]].map(function (f) {
      var input = el("input");
      input.type = "password"; input.id = f[0]; input.placeholder = f[1]; input.maxLength = 256;
      input.setAttribute("aria-label", f[1]); input.autocomplete = f[2];
      form.appendChild(input);
      return input;
    });
    var error = el("p", "error small");
    error.setAttribute("role", "alert");
    form.appendChild(error);
    var row = el("div", "dialog-buttons");
    var ok = el("button", "primary", "确定");
    ok.type = "submit";
    var cancel = el("button", "", "取消");
    cancel.type = "button";
    cancel.addEventListener("click", function () { dialog.close(); });
    row.appendChild(ok); row.appendChild(cancel);
    form.appendChild(row);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var current = fields[0].value, fresh = fields[1].value;
      error.textContent = !current || !fresh ? "请输入当前密码和新密码" : fresh.length < 10 ? "新密码至少10位"
        : fresh !== fields[2].value ? "两次输入的新密码不一致" : "";
      if (error.textContent) return;
      ok.disabled = true;
      api("POST", "/password", { current: current, "new": fresh }).then(function (d) {
        csrf = d.csrf;
        dialog.close();
        toast("密码已修改；其他已登录的浏览器需用新密码重新登录");
      }).catch(function (e) { error.textContent = e.message; }).then(function () { ok.disabled = false; });
    });
    dialog.appendChild(form);
    document.body.appendChild(dialog);
    return { dialog: dialog, fields: fields, error: error };
  }
  var pw = null;
  var pwButton = $("password-btn");
  if (pwButton) {
    pwButton.addEventListener("click", function () {
      pw = pw || passwordDialog();
      pw.fields.forEach(function (f) { f.value = ""; });
      pw.error.textContent = "";
      pw.dialog.showModal();
      pw.fields[0].focus();
    });
  }
  // --- 提醒: with it on (a button; kept per browser), something new is heard as a short tone (twice for
  // an urgent matter) and, while the page is not in front, seen as a desktop notice; a click on the
  // notice brings the page forward and ``open``s what it is about
  var alerting = false;
  try { alerting = window.localStorage.getItem("hotline.alerts") === "on"; } catch (e) { alerting = false; }
  function tone(urgent) {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = tone.ctx || (tone.ctx = new Ctx());
      [0, 0.3].slice(0, urgent ? 2 : 1).forEach(function (at) {
        var osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = urgent ? 880 : 660;
        gain.gain.value = 0.08;
        osc.connect(gain);
        gain.connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.2);
      });
    } catch (e) { /* no sound on this machine: the title and the notice still tell */ }
  }
  function alert(o) {  // o: urgent, title, body, tag, open
    if (!alerting) return;
    tone(o.urgent);
    if (!(document.hidden || !document.hasFocus())) return;
    if (!("Notification" in window) || window.Notification.permission !== "granted") return;
    var n = new window.Notification(o.title, { body: o.body, tag: o.tag });
    n.onclick = function () { window.focus(); o.open(); n.close(); };
  }
  // the 提醒：开/关 button; ``what`` names it in what the toggle says (待接入提醒, 新工单提醒)
  function alertsButton(button, what) {
    function set(on) {
      alerting = on;
      try { window.localStorage.setItem("hotline.alerts", on ? "on" : "off"); } catch (e) { /* private mode */ }
      button.textContent = "提醒：" + (on ? "开" : "关");
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    set(alerting);
    button.addEventListener("click", function () {
      set(!alerting);
      if (!alerting) return;
      tone(false);  // the click lets the browser play sound from now on
      if (!("Notification" in window)) { toast("此浏览器不支持桌面通知，将以提示音和标题提醒"); return; }
      if (window.Notification.permission === "granted") { toast("已开启" + what); return; }
      window.Notification.requestPermission().then(function (p) {
        toast(p === "granted" ? "已开启" + what : "浏览器未允许桌面通知，将以提示音和标题提醒");
      });
    });
  }
  // 导出: a CSV that streams in (a year of a big city takes minutes): ``btn`` counts the rows as they
  // come, a refusal is a toast instead of a page leaving the console, and the file's own last line,
  // when it was cut short or broken off, is said too. Saved once whole, under the server's name.
  function downloadCsv(btn, url, fallbackName) {
    if (btn.disabled) return;
    var label = btn.textContent;
    btn.disabled = true;
    btn.textContent = "导出中…";
    var rows = -1;  // the header line is no row
    var parts = [];
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401) { window.location.href = "/console/"; }
          throw new Error(data.detail || ("导出失败（" + r.status + "）"));
        });
      }
      var named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
      var reader = r.body.getReader();
      function pump() {
        return reader.read().then(function (got) {
          if (got.done) return;
          parts.push(got.value);
          for (var i = 0; i < got.value.length; i++) if (got.value[i] === 10) rows++;
          btn.textContent = "导出中… " + Math.max(rows, 0) + " 条";
          return pump();
        });
      }
      return pump().then(function () {
        var tail = new TextDecoder().decode(parts.length ? parts[parts.length - 1].slice(-400) : new Uint8Array());
        var link = document.createElement("a");
        link.href = URL.createObjectURL(new Blob(parts, { type: "text/csv;charset=utf-8" }));
        link.download = named ? named[1] : fallbackName;
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
        var note = /（(仅导出了[^）]*|导出中断[^）]*)）\s*$/.exec(tail);
        if (note) toast(note[1], true);
        else toast("已导出 " + Math.max(rows, 0) + " 条工单");
      });
    }).catch(function (e) { toast(e.message, true); }).then(function () {
      btn.disabled = false;
      btn.textContent = label;
    });
  }
  // A step of 办理记录 by its kind (progress, the citizen's 催办 / 补充 / 撤单, a 延期, a 协办's
  // 协办意见 with its unit, the centre's decision on a unit's 延期申请), else its status's word
  var STEPS = { note: "办理进展", urge: "市民催办", info: "市民补充", withdraw: "市民撤单", extend: "延期", assist: "协办意见",
                decision: "延期申请审核" };
  function stepLabel(h, statuses) {
    return (STEPS[h.kind] || statuses[h.status] || h.status) + (h.unit ? "（" + h.unit + "）" : "");
  }
  return { $: $, el: el, stepLabel: stepLabel, pad2: pad2, dayOf: dayOf, percent: percent, toast: toast, api: api, ticketFiles: ticketFiles,
           fields: fields, extensionBox: extensionBox, offer: offer, EXTEND_REASONS: EXTEND_REASONS,
           alert: alert, alertsButton: alertsButton, timeRows: timeRows, matterRows: matterRows, downloadCsv: downloadCsv,
           setCsrf: function (token) { csrf = token; } };
})();
