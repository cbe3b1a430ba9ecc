/* 12345 operator console. Plain JS, no build step. Everything from citizens or channels is put
 * into the page with textContent, never as HTML. */
"use strict";
(function () {
  var CHANNELS = { web: "网页", wechat_oa: "公众号", wechat_mp: "小程序", telegram: "Telegram", email: "邮件" };
  var MODES = { waiting: "待接入", operator: "人工处理", bot: "机器人", closed: "已结束" };
  var REASONS = {
    citizen_asked: "市民要求人工", nlu_unsure: "机器人未能理解", urgent: "紧急诉求",
    angry: "市民情绪激动", repeated: "重复反映", withdraw: "市民要求撤单", operator: "坐席主动接管",
    filing_failed: "工单未能登记", unsatisfied: "市民不满意",
    unsolved: "问题未解决"
  };
  var FROM = { citizen: "市民", bot: "机器人", operator: "人工客服", system: "系统", note: "内部备注" };
  var STATUS = {
    received: "已受理", accepted: "已派单", processing: "办理中", resolved: "已办结",
    closed: "已归档", returned: "已退回", reopened: "重新办理", withdrawn: "已撤单"
  };
  var NEXT = {
    received: ["accepted", "returned", "closed"], accepted: ["processing", "returned", "resolved"],
    processing: ["resolved", "returned"], returned: ["accepted", "closed"], resolved: ["closed", "reopened"],
    reopened: ["accepted", "processing", "resolved"], closed: ["reopened"]
  };
  // a ticket withdrawn at its citizen's request (撤单) is closed, and says so
  function roleName(u) { return u.role === "supervisor" ? "班长" : u.role === "department" ? "承办单位：" + u.unit : "坐席"; }
  function statusOf(t) { return t.withdrawn_at ? STATUS.withdrawn : STATUS[t.status] || t.status; }
  var ACTIONS = {
    login: "登录", "login.failed": "登录失败", "login.throttled": "登录被限制", logout: "退出", takeover: "接管", "takeover.refused": "接管未成功",
    handback: "交还机器人", close: "结束会话", transfer: "转交", reply: "回复市民", "reply.refused": "回复被拒绝",
    note: "内部备注", "form.save": "保存工单信息", "ticket.file": "登记工单", "ticket.status": "工单状态变更",
    "canned.update": "修改常用语", "user.create": "创建账号", "user.disable": "停用账号", "user.enable": "启用账号",
    "dead.retry": "重试异常记录", "dead.discard": "丢弃异常记录", "ticket.search": "工单查询", "ticket.note": "办理进展", "ticket.urge": "登记催办", "ticket.correct": "更正/改派", "ticket.merge": "并单", "ticket.unmerge": "取消并单", "ticket.withdraw": "撤单", "ticket.extend": "延期", "ticket.extension_ask": "登记延期申请", "ticket.extension_decide": "审核延期申请", "unit.accept": "承办单位签收", "unit.note": "承办单位办理进展", "unit.resolve": "承办单位办结", "unit.return": "承办单位退回", "unit.extension_ask": "承办单位申请延期", "unit.assist": "承办单位协办意见", "unit.export": "承办单位导出工单", "unit.contact": "承办单位查看联系电话", "password.change": "修改密码", "password.failed": "修改密码失败", "user.reset_password": "重置密码", "ticket.export": "导出工单", "departments.export": "导出承办单位考核", "report.view": "查看周报/月报",
    "knowledge.create": "新增知识库条目", "knowledge.update": "修改知识库", "knowledge.disable": "停用知识库条目",
    "knowledge.delete": "删除知识库条目", "knowledge.restore": "知识库条目恢复为文件版本", "knowledge.export": "导出知识库",
    "knowledge.clear_folded": "清除已并入文件的修改"
  };
  var KB_OFF = "知识库已关闭（HOTLINE_KNOWLEDGE_FILE 为空）";
  var DEAD_KINDS = { filing: "工单未能登记", delivery: "消息未能送达", turn: "消息未能处理" };
  var MESSAGE_KINDS = { ticket_filed: "受理回执", status_update: "进度通知", survey: "回访", reply: "机器人回复", operator: "人工回复" };

  var state = {
    me: null, queue: [], counts: {}, skew: 0, filter: { status: "", channel: "", assignee: "" },
    selected: "", conv: null, version: null, canned: [], users: [], ws: null, pollTimer: null, convTimer: null
  };
  var C = HotlineCommon;  // common.js
  var $ = C.$, el = C.el, pad2 = C.pad2, dayOf = C.dayOf, toast = C.toast, api = C.api,
    percent = C.percent;
  // A citizen's photos as thumbnails (?thumb=1; opened full size in a new tab); voice and other files as
  // links. One not fetched yet (WeChat's are fetched in the background) shows its word instead.
  function mediaRow(words, refs) {
    var row = el("div", "media");
    refs.forEach(function (ref, i) {
      var word = words[i] || "附件";
      var url = "/api/console/media?ref=" + encodeURIComponent(ref);
      var link = el("a", "attachment");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      if (word === "图片") {
        var img = el("img");
        img.alt = "［图片］";
        img.src = url + "&thumb=1";  // small; the link opens it whole
        img.addEventListener("error", function () {
          link.replaceWith(el("span", "attachment missing", "［图片（尚未取到）］"));
        });
        link.appendChild(img);
      } else {
        link.textContent = "［" + word + "］";
        link.setAttribute("download", "");
      }
      row.appendChild(link);
    });
    return row;
  }
  // A shared location on the map the centre uses (HOTLINE_CONSOLE_MAP_URL, {lat} and {lng}).
  function mapLink(template, geo) {
    var link = el("a", "map-link", "在地图中查看");
    link.href = template.replace("{lat}", Number(geo[0]).toFixed(6)).replace("{lng}", Number(geo[1]).toFixed(6));
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    return link;
  }
  function channelName(c) {
    if (!c) return "";
    if (state.channelNames && state.channelNames[c]) return state.channelNames[c];
    if (c.indexOf("portal:") === 0) return "网站留言";
    return CHANNELS[c] || c;
  }
  // the citizen's part of a conversation key ("portal:liuyanban:UU008729" → "UU008729")
  function senderOf(key, channel) {
    return channel && key.indexOf(channel + ":") === 0 ? key.slice(channel.length + 1) : key.split(":").slice(1).join(":");
  }
  function now() { return Date.now() / 1000 + state.skew; }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分" + (s % 60) + "秒";
    return Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分";
  }
  function clock(ts) {
    if (!ts) return "";
    var d = new Date(ts * 1000);
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function act(promise, done) {
    return promise.then(function (data) { if (done) toast(done); return data; })
      .catch(function (e) { toast(e.message, true); throw e; });
  }

  // --- queue -----------------------------------------------------------------------------------
  function applyQueue(data) {
    state.skew = data.now - Date.now() / 1000;
    state.queue = data.conversations || [];
    state.counts = data.counts || {};
    state.channelNames = data.channel_names || {};
    deadCount(data.dead_letters || 0);
    alertWaiting();
    alertReturned(data.returned);
    var sel = $("f-channel");
    var known = {};
    Array.prototype.forEach.call(sel.options, function (o) { known[o.value] = true; });
    (data.channels || []).forEach(function (c) {
      if (!known[c]) { var o = el("option", "", channelName(c)); o.value = c; sel.appendChild(o); }
    });
    renderQueue();
  }
  function visible() {
    var f = state.filter, me = state.me.name;
    return state.queue.filter(function (r) {
      if (f.status === "mine" && r.assignee !== me) return false;
      if (f.status && f.status !== "mine" && r.mode !== f.status) return false;
      if (f.channel && r.channel !== f.channel) return false;
      if (f.assignee === "me" && r.assignee !== me) return false;
      if (f.assignee === "none" && r.assignee) return false;
      return true;
    });
  }
  function renderQueue() {
    document.querySelectorAll("[data-count]").forEach(function (b) {
      b.textContent = state.counts[b.getAttribute("data-count")] || 0;
    });
    var list = $("queue-list");
    var rows = visible();
    list.textContent = "";
    rows.forEach(function (r) {
      var li = el("li", "queue-item" + (r.key === state.selected ? " selected" : ""));
      li.setAttribute("data-key", r.key);
      li.setAttribute("data-mode", r.mode);
      li.tabIndex = 0;
      var top = el("div", "qi-top");
      top.appendChild(el("span", "badge channel", channelName(r.channel)));
      top.appendChild(el("span", "badge mode-" + r.mode, MODES[r.mode] || r.mode));
      if (r.urgent) top.appendChild(el("span", "badge urgent", "紧急"));
      if (r.urged) top.appendChild(el("span", "badge urged", "催办"));  // pressed for a ticket in the last 24 h
      if (r.reason) top.appendChild(el("span", "badge reason", REASONS[r.reason] || r.reason));
      if (r.mode === "waiting") {
        var w = el("span", "wait", "等待 " + duration(now() - r.waiting_since));
        w.setAttribute("data-since", r.waiting_since);
        top.appendChild(w);
      }
      li.appendChild(top);
      li.appendChild(el("div", "qi-text", r.last_text || "（无文字）"));
      var meta = el("div", "qi-meta");
      if (r.category && r.category.length) meta.appendChild(el("span", "", r.category.join(" / ")));
      meta.appendChild(el("span", "", r.assignee ? "处理人：" + r.assignee : "未分配"));
      meta.appendChild(el("span", "", clock(r.last_in_at)));
      li.appendChild(meta);
      li.addEventListener("click", function () { select(r.key); });
      li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") select(r.key); });
      list.appendChild(li);
    });
    $("queue-empty").hidden = rows.length > 0;
  }
  function tickWaits() {
    document.querySelectorAll(".wait[data-since]").forEach(function (w) {
      w.textContent = "等待 " + duration(now() - parseFloat(w.getAttribute("data-since")));
    });
  }
  function loadQueue() { return api("GET", "/queue").then(applyQueue); }

  // --- 待接入提醒: the tab's title counts who waits, so a console behind other windows still tells;
  // with 提醒 on (common.js), a short tone for each citizen newly waiting and, when the console is not
  // in front, a desktop notice. The notice names the channel and the reason, never the citizen's words.
  var TITLE = document.title;
  var known = null;  // the waiting conversations last seen, by key
  function alertWaiting() {
    var waiting = state.queue.filter(function (r) { return r.mode === "waiting"; });
    var urgent = waiting.some(function (r) { return r.urgent; });
    document.title = (waiting.length ? (urgent ? "【紧急】" : "") + "（" + waiting.length + "人待接入）" : "") + TITLE;
    var fresh = known === null ? [] : waiting.filter(function (r) { return !known[r.key]; });
    known = {};
    waiting.forEach(function (r) { known[r.key] = true; });
    if (!fresh.length) return;
    var first = fresh[0];
    C.alert({
      urgent: fresh.some(function (r) { return r.urgent; }), tag: "hotline-waiting",
      title: (first.urgent ? "【紧急】" : "") + "12345 坐席工作台：" + fresh.length + " 位市民新进入待接入",
      body: fresh.slice(0, 3).map(function (r) {
        return channelName(r.channel) + " · " + (REASONS[r.reason] || r.reason || "待接入");
      }).join("\n"),
      open: function () { show("desk"); select(first.key); }
    });
  }
  // 待改派: tickets their department returned wait to be sent out again; everyone sees how many
  // beside 工单查询 (a click lists them), and with 提醒 on hears a tone and, away, gets a notice
  // when more come back. None where the ticket platform routes (open311).
  var returnedKnown = null;
  function alertReturned(n) {
    var badge = $("returned-badge");
    badge.hidden = !n;
    badge.textContent = n ? n + "件待改派" : "";
    if (n === null || n === undefined) return;
    var before = returnedKnown;
    returnedKnown = n;
    if (before === null || n <= before) return;
    C.alert({ urgent: false, tag: "hotline-returned", title: "12345 坐席工作台：" + (n - before) + " 件工单被承办单位退回",
              body: "共 " + n + " 件待改派，点击查看", open: function () { lookupBy({ status: "returned" }); } });
  }

  // --- live updates ------------------------------------------------------------------------------
  function connect() {
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws;
    try { ws = new WebSocket(proto + window.location.host + "/api/console/ws"); } catch (e) { return poll(); }
    state.ws = ws;
    ws.onopen = function () {
      $("conn").setAttribute("data-state", "connected");
      $("conn").textContent = "实时";
      if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null; }
    };
    ws.onmessage = function (ev) {
      var msg = JSON.parse(ev.data);
      if (msg.type === "expired") { window.location.href = "/console/"; return; }
      if (msg.type === "queue") {
        applyQueue(msg);
        if (!$("super").hidden && Date.now() - (loadSupervisor.at || 0) > 5000) loadSupervisor();
        if (msg.version !== state.version) {
          state.version = msg.version;
          if (state.selected) refreshConversation();
        }
      }
    };
    ws.onclose = function (ev) {
      state.ws = null;
      if (ev.code === 4401) { window.location.href = "/console/"; return; }
      $("conn").setAttribute("data-state", "offline");
      $("conn").textContent = "重连中…";
      poll();
      setTimeout(connect, 2000);
    };
  }
  function poll() {
    if (state.pollTimer) return;
    state.pollTimer = setInterval(function () {
      loadQueue().then(function () { if (state.selected) refreshConversation(); }).catch(function () {});
    }, 2000);
  }

  // --- one conversation --------------------------------------------------------------------------
  function select(key) {
    if (state.selected !== key) {
      state.selected = key;
      state.conv = null;
      $("reply-text").value = "";
      $("kb-q").value = "";  // the next conversation's search starts from its citizen's words
      toggleKnowledge(false);
    }
    renderQueue();
    refreshConversation(true);
  }
  function refreshConversation(focus) {
    var key = state.selected;
    clearTimeout(state.convTimer);
    state.convTimer = setTimeout(function () {
      api("GET", "/conversation?key=" + encodeURIComponent(key)).then(function (data) {
        if (state.selected !== key) return;
        var first = !state.conv;
        state.conv = data;
        renderConversation(first);
        if (first) loadRelated(key);
        if (focus && data.can_reply) $("reply-text").focus();
      }).catch(function (e) { toast(e.message, true); });
    }, focus ? 0 : 120);
  }
  function renderConversation(first) {
    var c = state.conv, s = c.summary, me = state.me;
    $("conv-empty").hidden = true;
    $("conv").hidden = false;
    $("side").hidden = false;
    $("side-empty").hidden = true;
    $("conv").setAttribute("data-key", s.key);
    $("conv").setAttribute("data-mode", s.mode);
    $("conv-title").textContent = channelName(s.channel) + " · " + senderOf(s.key, s.channel).slice(0, 12);
    $("conv-mode").textContent = MODES[s.mode] || s.mode;
    $("conv-mode").className = "badge mode-" + s.mode;
    $("conv-reason").textContent = s.reason ? (REASONS[s.reason] || s.reason) : "";
    $("conv-reason").hidden = !s.reason;
    $("conv-assignee").textContent = s.assignee ? "处理人：" + s.assignee : "";
    var mine = s.mode === "operator" && s.assignee === me.name;
    var mayRelease = !s.assignee || s.assignee === me.name || me.role === "supervisor";
    $("btn-takeover").disabled = mine;
    $("btn-takeover").textContent = mine ? "已接管" : "接管";
    $("btn-handback").disabled = !((s.mode === "operator" || s.mode === "waiting") && mayRelease);
    $("btn-close").disabled = s.mode === "closed" || !mayRelease;
    $("btn-transfer").disabled = s.mode !== "operator" || !(s.assignee === me.name || me.role === "supervisor");
    $("reply-text").disabled = false;
    updateComposer();

    var hist = $("history");
    var stick = first || hist.scrollHeight - hist.scrollTop - hist.clientHeight < 60;
    hist.textContent = "";
    c.history.forEach(function (m) {
      var li = el("li", "msg");
      li.setAttribute("data-from", m.from);
      li.setAttribute("data-kind", m.kind);
      var who = FROM[m.from] || m.from;
      if (m.from === "operator" && m.author) who += "（" + m.author + "）";
      if (m.from === "note" && m.author) who += "（" + m.author + "）";
      if (m.kind === "bot_suppressed") who = "机器人回复未发送（人工已接管）";
      li.appendChild(el("span", "who", who + " · " + clock(m.at)));
      if (m.title) li.appendChild(el("div", "title", m.title)); // a letter's own title
      var refs = m.refs || [];
      var extra = (m.media || []).map(function (w, i) { return refs[i] ? "" : "［" + w + "］"; }).join("") +
        (m.place ? "［位置：" + m.place + "］" : "") + (m.menu ? "［点击菜单：" + m.menu + "］" : "");
      var line = m.text + (m.ticket_id && m.text.indexOf(m.ticket_id) < 0 ? "（" + m.ticket_id + "）" : "") + extra;
      if (line) li.appendChild(el("div", "text", line));
      if (refs.length) li.appendChild(mediaRow(m.media || [], refs));
      if (m.geo && c.map_url) li.appendChild(mapLink(c.map_url, m.geo));
      hist.appendChild(li);
    });
    if (stick) hist.scrollTop = hist.scrollHeight;
    renderNlu(c.nlu);
    if (first) renderForm(c.form);
    $("tf-attachments").hidden = !c.attachments;
    $("tf-attachments").textContent = c.attachments ? "附件：市民发来 " + c.attachments + " 个，登记时随工单提交" : "";
    state.platformOwnsStatus = !!c.status_by_platform;
    renderTickets(c.tickets);
  }
  function updateComposer() {
    var c = state.conv;
    var note = $("note-mode").checked;
    var can = c && (note || c.can_reply);
    document.querySelector(".composer").classList.toggle("note", note);
    $("btn-send").disabled = !can;
    $("btn-send").textContent = note ? "添加备注" : "发送";
    $("reply-text").placeholder = note ? "内部备注，仅坐席可见（Ctrl+Enter 保存）" : "输入回复，Ctrl+Enter 发送";
    $("composer-hint").textContent = !c ? "" : note ? "备注不会发送给市民" :
      c.can_reply ? "回复将通过市民所在渠道发送" : "接管后才能回复市民（Alt+T）";
  }
  function renderNlu(n) {
    var dl = $("nlu");
    dl.textContent = "";
    var conf = function (x) { return x ? "（置信度 " + Math.round(x * 100) + "%）" : ""; };
    var parts = Object.keys(n.location_parts || {}).map(function (k) { return n.location_parts[k]; }).join(" · ");
    [
      ["意图", n.intent ? n.intent + conf(n.intent_confidence) : "—"],
      ["分类", n.category.length ? n.category.join(" / ") + conf(n.category_confidence) : "—"],
      ["诉求类型", n.request_type || "—"],
      ["紧急", n.urgency ? "是" + (n.urgency_reason ? "（" + n.urgency_reason + "）" : "") : "否"],
      ["地点", n.location ? n.location + (parts ? "（" + parts + "）" : "") : "—"],
      ["主题", n.subject || "—"],
      ["承办部门", n.departments.length ? n.departments.join("、") : "—"]
    ].forEach(function (pair) {
      dl.appendChild(el("dt", "", pair[0]));
      dl.appendChild(el("dd", "", pair[1]));
    });
  }
  function renderForm(f) {
    $("tf-title").value = f.title || "";
    $("tf-description").value = f.description || "";
    $("tf-category").value = (f.category || []).join("/");
    $("tf-type").value = f.request_type || "";
    $("tf-urgent").checked = !!f.urgent;
    $("tf-location").value = f.location_text || "";
    $("tf-contact").value = f.contact || "";
    $("tf-departments").value = (f.departments || []).join("，");
  }
  function readForm() {
    var split = function (v, re) { return v.split(re).map(function (x) { return x.trim(); }).filter(Boolean); };
    return {
      title: $("tf-title").value.trim(), description: $("tf-description").value.trim(),
      category: split($("tf-category").value, /[\/／]/).slice(0, 3), request_type: $("tf-type").value,
      urgent: $("tf-urgent").checked, location_text: $("tf-location").value.trim(),
      contact: $("tf-contact").value.trim(), departments: split($("tf-departments").value, /[,，、]/).slice(0, 6)
    };
  }
  function renderTickets(tickets) {
    var ul = $("tickets");
    ul.textContent = "";
    if (!tickets.length) { ul.appendChild(el("li", "muted", "暂无工单")); return; }
    tickets.forEach(function (t) {
      var li = el("li");
      li.setAttribute("data-ticket-id", t.ticket_id);
      var tid = el("div", "tid", t.ticket_id + (t.platform_request_id ? "（平台编号 " + t.platform_request_id + "）" : "") + " ");
      var more = el("button", "link", "详情");
      more.type = "button";
      more.addEventListener("click", function () { show("lookup"); showTicket(t.ticket_id); });
      tid.appendChild(more);
      li.appendChild(tid);
      li.appendChild(el("div", "", (t.title || "") + " · " + statusOf(t) + (t.rating ? " · 评价：" + t.rating : "") +
                               (t.urges ? " · 催办" + t.urges + "次" : "")));
      if (state.platformOwnsStatus) {  // open311: the platform moves tickets; the console only shows them
        li.appendChild(el("div", "muted small", "工单状态由工单平台管理"));
        ul.appendChild(li);
        return;
      }
      li.appendChild(ticketControls(t, function () { refreshConversation(); }));
      ul.appendChild(li);
    });
  }
  // 同一地点近30天工单: what neighbours reported at the same place (a repeat, a pattern) before the
  // operator files another; asked once per conversation opened (it reads a month of tickets)
  function loadRelated(convKey) {
    var ul = $("related");
    ul.textContent = "";
    $("related-place").textContent = "";
    api("GET", "/related?key=" + encodeURIComponent(convKey)).then(function (d) {
      if (state.selected !== convKey) return;
      ul.textContent = "";
      $("related-place").textContent = d.place ? "（" + d.place + "）" : "";
      if (!d.place) { ul.appendChild(el("li", "muted", "未识别出具体地点")); return; }
      if (!d.tickets.length) { ul.appendChild(el("li", "muted", "暂无")); return; }
      d.tickets.forEach(function (t) {
        var li = el("li");
        li.setAttribute("data-ticket-id", t.ticket_id);
        var tid = el("div", "tid", t.ticket_id + " ");
        if (t.own) tid.appendChild(el("span", "badge", "本人"));
        if (t.overdue) tid.appendChild(el("span", "badge overdue", "超期"));
        var more = el("button", "link", "详情");
        more.type = "button";
        more.addEventListener("click", function () { show("lookup"); showTicket(t.ticket_id); });
        tid.appendChild(more);
        li.appendChild(tid);
        li.appendChild(el("div", "", (t.title || "") + " · " + (t.category[0] || "未分类") + " · " +
          statusOf(t) + " · " + dateTime(t.created_at)));
        ul.appendChild(li);
      });
      if (d.count > d.tickets.length) {
        var all = el("li");
        var link = el("button", "link", "共" + (d.more ? "50余" : d.count) + "件，在工单查询中查看");
        link.type = "button";
        link.addEventListener("click", function () {
          show("lookup"); $("lq").value = d.place; $("lq-days").value = "30"; $("lookup-form").requestSubmit();
        });
        all.appendChild(link);
        ul.appendChild(all);
      }
    }).catch(function () {});
  }
  // 变更状态: the next statuses the workflow allows, with a note the citizen sees; and 办理进展: a
  // department's interim answer, told to the citizen while the status stays.
  function ticketControls(t, done) {
    var box = el("div", "ticket-controls");
    box.appendChild(statusControls(t, done));
    if (t.status !== "closed") box.appendChild(progressControls(t, done));
    if (t.status !== "closed" && t.status !== "resolved") box.appendChild(withdrawControls(t, done));
    // a department's 延期申请 waiting: decided in 工单查询's detail (批准 takes another day as well)
    if (t.status !== "closed" && t.status !== "resolved" && t.due_at && state.me.role === "supervisor" && !t.extension_pending) {
      box.appendChild(extendControls(t, done));
    }
    return box;
  }
  // 延期 (supervisors): the department asked for more time and the centre granted it; the citizen
  // hears the new 办理时限 and the reason, and 超期 counts from it
  function extendControls(t, done) {
    return ticketRow(t, done, {
      cls: "extend-row", placeholder: "延期原因（市民可见）", maxLength: 200, label: "延期",
      day: { min: firstExtendDay(t), label: "延期至", title: "新的办理时限（该日24时前）" },
      list: "extend-reasons", path: "/extend", ok: "已延期，市民将收到办理时限延长的通知",
      check: function (day, note) {
        return !day.value ? "请选择延期后的办理时限" : note.value.trim() ? "" : "请填写延期原因";
      },
      body: function (day, note) { return { until: day.value, reason: note.value }; }
    });
  }
  // the first day a 延期 may run to: its end later than both now and the limit the ticket has (a
  // limit in days ends at 24:00, the next day's 00:00: that day itself)
  function firstExtendDay(t) { return dayOf(Math.max(Date.now() / 1000, t.due_at)); }
  // 延期申请 (工单查询's detail): a department asked for more time (by phone, by letter, or its own
  // system through the admin API); an operator records it, a supervisor grants it (to the day asked
  // or another, in words the citizen reads) or refuses it with a reason nobody outside hears
  function extensionControls(t, done) {
    var made = C.extensionBox(t, {
      none: "延期申请（承办单位申请延长办理时限）", when: function (at) { return "登记于 " + dateTime(at); },
      outcome: function (r) {
        return r.outcome === "pending" ? "待班长审核"
          : r.outcome === "approved" ? "已批准，延至 " + dayOf(r.granted_until - 1) + (r.decided_by ? "（" + r.decided_by + "）" : "（直接延期）")
          : r.outcome === "rejected" ? "已驳回（" + r.decided_by + "）：" + r.answer : "已失效（工单已办结、撤单或并单）";
      }
    });
    var box = made.box, waiting = made.waiting;
    var path = "/tickets/" + encodeURIComponent(t.ticket_id) + "/extension-request";
    if (waiting && state.me.role === "supervisor") {
      var approve = ticketRow(t, done, {
        cls: "approve-row", placeholder: "告知市民的延期原因（不填则用申请理由）", maxLength: 200, label: "批准",
        day: { min: firstExtendDay(t), label: "批准延至", title: "批准的办理时限（该日24时前），可改" },
        list: "extend-reasons", path: "/extension-request/decision", ok: "已批准延期，市民将收到办理时限延长的通知",
        check: function (day) { return day.value ? "" : "请选择批准的办理时限"; },
        body: function (day, note) { return { approve: true, until: day.value, reason: note.value }; }
      });
      approve.querySelector("input[type=date]").value = dayOf(waiting.until - 1);
      box.appendChild(approve);
      box.appendChild(ticketRow(t, done, {
        cls: "reject-row", placeholder: "驳回理由（内部记录，不发给市民）", maxLength: 200, label: "驳回",
        path: "/extension-request/decision", ok: "已驳回延期申请",
        check: function (sel, note) { return note.value.trim() ? "" : "请填写驳回理由"; },
        body: function (sel, note) { return { approve: false, reason: note.value }; }
      }));
    } else if (waiting) {
      box.appendChild(el("p", "muted small", "已登记，等待班长审核"));
    } else if (t.status !== "resolved" && t.status !== "closed" && t.due_at && !t.merged_into) {
      var unit = el("select", "unit");  // the units handling it (主办 first): only they ask
      unit.setAttribute("aria-label", "申请单位");
      (t.departments || []).forEach(function (d) { var o = el("option", "", d); o.value = d; unit.appendChild(o); });
      var row = ticketRow(t, done, {
        cls: "ask-row", placeholder: "申请理由（供班长审核）", maxLength: 200, label: "登记申请",
        day: { min: firstExtendDay(t), label: "申请延至", title: "申请的办理时限（该日24时前）" },
        path: "/extension-request", ok: "延期申请已登记，等待班长审核",
        check: function (day, note) {
          return !unit.value ? "工单尚未派给承办单位" : !day.value ? "请选择申请延至的日期" : note.value.trim() ? "" : "请填写申请理由";
        },
        body: function (day, note) { return { unit: unit.value, until: day.value, reason: note.value }; }
      });
      row.insertBefore(unit, row.firstChild);
      box.appendChild(row);
    }
    return box;
  }
  // 撤单: the citizen asked for it (问题已自行解决, 重复提交) and the operator checked it with them;
  // the ticket closes without a 回访 and the citizen hears the reason
  function withdrawControls(t, done) {
    return ticketRow(t, done, {
      cls: "withdraw-row", placeholder: "撤单原因（市民可见）", maxLength: 200, label: "撤单",
      list: "withdraw-reasons", path: "/withdraw", ok: "已撤单，市民将收到撤单通知",
      confirm: "撤单后工单关闭、不再办理，也不再回访。确定撤销工单 " + t.ticket_id + " 吗？",
      check: function (sel, note) { return note.value.trim() ? "" : "请填写撤单原因"; },
      body: function (sel, note) { return { reason: note.value }; }
    });
  }
  function progressControls(t, done) {
    return ticketRow(t, done, {
      cls: "progress-row", placeholder: "办理进展（市民可见，状态不变）", maxLength: 2000, label: "发送进展",
      path: "/notes", ok: "办理进展已发送给市民",
      check: function (sel, note) { return note.value.trim() ? "" : "请填写办理进展"; },
      body: function (sel, note) { return { note: note.value }; }
    });
  }
  function statusControls(t, done) {
    return ticketRow(t, done, {
      cls: "move-row", next: NEXT[t.status] || [], placeholder: "说明（市民可见）", maxLength: 200, label: "更新",
      path: "/status", ok: "工单状态已更新",
      check: function (sel) { return sel.value && sel.selectedIndex > 0 ? "" : "请选择新状态"; },
      body: function (sel, note) { return { status: sel.value, note: note.value }; }
    });
  }
  // One row of a ticket's controls: (a new status, or a day,) words the citizen reads, and the button.
  function ticketRow(t, done, o) {
    var row = el("div", "status-row" + (o.cls ? " " + o.cls : ""));
    var sel = null;
    if (o.next) {
      sel = el("select");
      sel.appendChild(el("option", "", "变更状态…"));
      o.next.forEach(function (s) { var opt = el("option", "", STATUS[s] || s); opt.value = s; sel.appendChild(opt); });
      row.appendChild(sel);
    } else if (o.day) {  // a day picked (延期至), from o.day.min on
      sel = el("input");
      sel.type = "date";
      sel.min = o.day.min;
      sel.title = o.day.title;
      sel.setAttribute("aria-label", o.day.label);
      row.appendChild(sel);
    }
    var note = el("input");
    note.placeholder = o.placeholder;
    note.maxLength = o.maxLength;
    if (o.list) note.setAttribute("list", o.list);  // common wordings offered as you type
    var btn = el("button", "", o.label);
    btn.type = "button";
    btn.addEventListener("click", function () {
      var problem = o.check(sel, note);
      if (problem) { toast(problem, true); return; }
      if (o.confirm && !window.confirm(o.confirm)) return;  // the operator thought better of it
      act(api("POST", "/tickets/" + encodeURIComponent(t.ticket_id) + o.path, o.body(sel, note)), o.ok).then(done);
    });
    row.appendChild(note); row.appendChild(btn);
    return row;
  }

  // --- actions ---------------------------------------------------------------------------------
  function key() { return state.selected; }
  function takeover() {
    if (!key()) return;
    act(api("POST", "/takeover", { key: key() }), "已接管，机器人已静默").then(function () {
      refreshConversation(true);
    }).catch(function () { refreshConversation(); });
  }
  function handback() {
    if (!key() || $("btn-handback").disabled) return;
    act(api("POST", "/handback", { key: key() }), "已交还机器人").then(function () { refreshConversation(); });
  }
  function closeConv() {
    if (!key() || $("btn-close").disabled) return;
    if (!window.confirm("确定结束该会话吗？")) return;
    act(api("POST", "/close", { key: key() }), "会话已结束").then(function () { refreshConversation(); });
  }
  function transfer() {
    var to = $("transfer-to").value;
    if (!to) { toast("请选择要转交的坐席", true); return; }
    act(api("POST", "/transfer", { key: key(), to: to }), "已转交给 " + to).then(function () { refreshConversation(); });
  }
  function send() {
    var box = $("reply-text");
    var text = box.value.trim();
    if (!text || !key() || $("btn-send").disabled) return;
    var note = $("note-mode").checked;
    var body = { key: key(), text: text };
    if (!note) body.client_message_id = "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    $("btn-send").disabled = true;
    act(api("POST", note ? "/note" : "/reply", body)).then(function () {
      box.value = "";
      refreshConversation();
    }).catch(function () {}).then(updateComposer);
  }
  function saveForm() {
    return act(api("PUT", "/form", { key: key(), form: readForm() }), "工单信息已保存");
  }
  function fileTicket() {
    if (!key()) return;
    var f = readForm();
    if (!f.description) { toast("请填写问题描述", true); return; }
    var rid = "r" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    act(api("POST", "/ticket", { key: key(), form: f, request_id: rid })).then(function (r) {
      toast("工单已登记：" + r.ticket_id + (r.repeats ? "（疑似重复：同一地点近30天已有 " + r.repeats + " 件同类未办结工单，可在工单查询中并单）" : ""));
      state.conv = null;
      refreshConversation();
    });
  }
  function insertCanned(i) {
    var text = state.canned[i];
    if (!text) return;
    var box = $("reply-text");
    box.value = box.value ? box.value + text : text;
    box.focus();
  }
  // 知识库: the answers the bot gives (答复口径), searched by the citizen's last words or the
  // operator's, and inserted into the reply (the operator reads it over before sending)
  function lastCitizenText() {
    var h = (state.conv && state.conv.history) || [];
    for (var i = h.length - 1; i >= 0; i--) if (h[i].from === "citizen" && h[i].text) return h[i].text;
    return "";
  }
  function toggleKnowledge(open) {
    var panel = $("kb-panel");
    if (open === undefined) open = panel.hidden;
    panel.hidden = !open;
    $("btn-kb").setAttribute("aria-expanded", String(open));
    if (!open) return;
    if (!$("kb-q").value) $("kb-q").value = lastCitizenText().slice(0, 200);
    searchKnowledge();
    $("kb-q").focus();
    $("kb-q").select();
  }
  function searchKnowledge() {
    var q = $("kb-q").value.trim();
    api("GET", "/knowledge?q=" + encodeURIComponent(q)).then(function (d) {
      var list = $("kb-results");
      list.textContent = "";
      if (!d.enabled) { list.appendChild(el("li", "muted", KB_OFF + "，无法搜索")); return; }
      if (!d.entries.length) { list.appendChild(el("li", "muted", "知识库中没有找到相关答复")); return; }
      d.entries.forEach(function (e) {
        var li = el("li", "kb-entry");
        li.appendChild(el("div", "kb-question", e.question));
        li.appendChild(el("div", "kb-answer", e.answer));
        var foot = el("div", "kb-foot");
        foot.appendChild(el("span", "", [e.source, e.updated ? e.updated + " 更新" : ""].filter(Boolean).join(" · ")));
        var use = el("button", "small", "插入");
        use.type = "button";
        use.addEventListener("click", function () {
          var box = $("reply-text");
          box.value = box.value ? box.value + "\n" + e.answer : e.answer;
          toggleKnowledge(false);
          box.focus();
        });
        foot.appendChild(use);
        li.appendChild(foot);
        list.appendChild(li);
      });
    }).catch(function (e) { toast(e.message, true); });
  }
  function move(step) {
    var rows = visible();
    if (!rows.length) return;
    var i = rows.findIndex(function (r) { return r.key === state.selected; });
    i = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step));
    select(rows[i].key);
    var li = document.querySelector(".queue-item.selected");
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  function loadCanned() {
    return api("GET", "/canned").then(function (d) {
      state.canned = d.items;
      var sel = $("canned");
      while (sel.options.length > 1) sel.remove(1);
      d.items.forEach(function (t, i) {
        var o = el("option", "", (i < 9 ? (i + 1) + ". " : "") + (t.length > 28 ? t.slice(0, 28) + "…" : t));
        o.value = String(i);
        sel.appendChild(o);
      });
      $("canned-edit").value = d.items.join("\n");
    });
  }
  function loadUsers() {
    return api("GET", "/users").then(function (d) {
      state.users = d.users;
      var sel = $("transfer-to");
      while (sel.options.length > 1) sel.remove(1);
      d.users.forEach(function (u) {
        if (u.name === state.me.name || u.disabled || u.role === "department") return;  // a unit takes no conversation
        var o = el("option", "", u.display_name + "（" + u.name + "）");
        o.value = u.name;
        sel.appendChild(o);
      });
    });
  }

  // --- supervisor view ---------------------------------------------------------------------------
  // 即将超期 (HOTLINE_DUE_SOON_HOURS; 0 = off): the card and the lookup's filter say how soon
  function setDueSoon(hours) {
    var within = "办理时限将在" + hours + "小时内到期、尚未办结";
    $("card-due-soon").hidden = !hours;
    $("card-due-soon").title = "查看" + within + "的工单";
    $("lq-due-soon-label").hidden = !hours;
    $("lq-due-soon-label").title = within;
    if (!hours) $("lq-due-soon").checked = false;
  }
  // a card or a report's row: every ticket it counts, in 工单查询, with only the filters ``by`` names
  // ({overdue, dueSoon, urged, repeated, returned, doneLate, unanswered, extended, extensionPending, solved, status, department,
  // category, words,
  // days}; all time unless days)
  function lookupBy(by) {
    show("lookup");
    $("lq").value = by.words || ""; $("lq-status").value = by.status || ""; $("lq-channel").value = ""; $("lq-urgent").checked = false;
    $("lq-rating").value = ""; $("lq-solved").value = by.solved || ""; $("lq-reviewed").checked = false; $("lq-repeated").checked = !!by.repeated;
    $("lq-returned").checked = !!by.returned; $("lq-done-late").checked = !!by.doneLate;
    $("lq-unanswered").checked = !!by.unanswered; $("lq-extended").checked = !!by.extended;
    $("lq-extension-pending").checked = !!by.extensionPending;
    $("lq-department").value = by.department || ""; $("lq-category").value = by.category || "";
    $("lq-overdue").checked = !!by.overdue; $("lq-due-soon").checked = !!by.dueSoon; $("lq-urged").checked = !!by.urged;
    $("lq-days").value = by.days || "0";
    searchTickets(false);
  }
  function linkCell(text, title, open) {  // a report's cell (a name, a count) that opens its tickets
    var td = el("td");
    var button = el("button", "link", text);
    button.type = "button";
    button.title = title;
    button.addEventListener("click", open);
    td.appendChild(button);
    return td;
  }
  function emptyRow(tb, cols) {
    var none = el("tr");
    var td = el("td", "muted", "暂无");
    td.colSpan = cols;
    none.appendChild(td);
    tb.appendChild(none);
  }
  // 热点诉求: the kinds of matter against the period before (环比), and the spots reported again and again
  function loadHotspots() {
    var days = $("s-hot-days").value;
    api("GET", "/hotspots?days=" + days).then(function (d) {
      var cats = $("s-hot-categories");
      cats.textContent = "";
      if (!d.categories.length) emptyRow(cats, 4);
      d.categories.forEach(function (r) {
        var tr = el("tr");
        var change = r.change === null ? "新增" : (r.change > 0 ? "+" : "") + percent(r.change);
        tr.appendChild(linkCell(r.category.join(" / "), "查看近" + days + "天受理的此类工单",
          function () { lookupBy({ category: r.category.join("/"), days: days }); }));
        [r.filed, r.before, change].forEach(function (v, i) {
          var td = el("td", "", v);
          if (i === 2 && (r.change === null || r.change >= 0.5)) td.className = "alert";  // new or rising fast
          tr.appendChild(td);
        });
        cats.appendChild(tr);
      });
      var places = $("s-hot-places");
      places.textContent = "";
      if (!d.places.length) emptyRow(places, 5);
      d.places.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(linkCell(r.place, "查看近" + days + "天提到“" + r.place + "”的工单",
          function () { lookupBy({ words: r.place, days: days }); }));
        [r.kind || "未分类", r.filed, r.open, dateTime(r.latest)].forEach(function (v) { tr.appendChild(el("td", "", v)); });
        places.appendChild(tr);
      });
    }).catch(function (e) { toast(e.message, true); });
  }
  // 承办单位考核: per unit (主办 or 协办) of the period's tickets; its name opens them in 工单查询
  function loadDepartments() {
    loadDepartments.at = Date.now();
    var days = $("s-dept-days").value;
    $("btn-dept-export").href = "/api/console/departments.csv?days=" + days;  // the period shown, as a file
    api("GET", "/departments?days=" + days).then(function (d) {
      loadDepartments.last = d;
      renderDepartments();
    }).catch(function (e) { toast(e.message, true); });
  }
  // 综合得分 ranks the units (a click on its heading; again: the busiest first, as the ledger counts them)
  function sortDepartments() {
    loadDepartments.byScore = !loadDepartments.byScore;
    if (loadDepartments.last) renderDepartments();
  }
  function renderDepartments() {
    var d = loadDepartments.last, days = String(d.days), byScore = !!loadDepartments.byScore;
    var tb = $("s-departments");
    tb.textContent = "";
    // 综合得分: the rates weighed as HOTLINE_SCORE_WEIGHTS says (none: no column)
    var weights = Object.keys(d.weights || {}).filter(function (k) { return d.weights[k] > 0; });
    var total = weights.reduce(function (a, k) { return a + d.weights[k]; }, 0);
    var head = $("s-score-head");
    head.hidden = !weights.length;
    head.textContent = "综合得分" + (byScore ? " ▼" : "");
    head.setAttribute("aria-sort", byScore ? "descending" : "none");
    head.title = weights.map(function (k) { return k + Math.round(d.weights[k] / total * 1000) / 10 + "%"; })
      .join("、") + "加权，百分制；缺少其中任一项" + (d.score_min_tickets ? "或期间受理（不含撤单）少于" +
      d.score_min_tickets + "件" : "") + "的单位不计分。" + (byScore ? "点击恢复按受理量排列" : "点击按综合得分排名");
    var rows = d.departments.slice();
    if (byScore) {  // the best first; a unit not scored after every scored one, busiest first among them
      rows.sort(function (a, b) {
        return (a.score === null) - (b.score === null) || (b.score || 0) - (a.score || 0) || b.filed - a.filed;
      });
    }
    if (!rows.length) emptyRow(tb, weights.length ? 18 : 17);
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(linkCell(r.department, "查看" + r.department + "近" + days + "天受理的工单",
        function () { lookupBy({ department: r.department, days: days }); }));
      [r.filed, r.primary, r.done, percent(r.done_rate), r.done_late, percent(r.on_time_rate), r.overdue, r.returns,
        r.returned, r.urged, r.withdrawn, r.extended, percent(r.respond_rate), r.rated, percent(r.satisfaction),
        percent(r.solved_rate)].concat(weights.length ? [r.score === null ? "—" : r.score.toFixed(1)] : [])
        .forEach(function (v, i) {
          var td = el("td", "", v);
          if (i === 4 && v > 0) {  // 超期办结: the tickets it finished late, in 工单查询
            td = linkCell(String(v), "查看" + r.department + "近" + days + "天受理、超期办结的工单",
              function () { lookupBy({ department: r.department, days: days, doneLate: true }); });
          }
          if (i === 7 && v > 0) {  // 退回: the tickets it sent back, in 工单查询 (曾退回 + 承办部门)
            td = linkCell(String(v), "查看" + r.department + "近" + days + "天受理、由其退回的工单",
              function () { lookupBy({ department: r.department, days: days, returned: true }); });
          }
          if (i === 11 && v > 0) {  // 延期: the tickets it was given more time for, in 工单查询 (已延期 + 承办部门)
            td = linkCell(String(v), "查看" + r.department + "近" + days + "天受理、已延期的工单",
              function () { lookupBy({ department: r.department, days: days, extended: true }); });
          }
          if (i === 12 && r.unanswered > 0) {  // 响应率: the tickets it has not taken on, past their time
            td = linkCell(v, "查看" + r.department + "近" + days + "天受理、超时未签收的" + r.unanswered + "件工单",
              function () { lookupBy({ department: r.department, days: days, unanswered: true }); });
          }
          if ((i === 4 || (i >= 6 && i <= 8)) && v > 0 || i === 12 && (r.unanswered || r.responded_late)) {
            td.className = "alert";  // late, sent back or not taken on: what to press on
          }
          tr.appendChild(td);
        });
      tb.appendChild(tr);
    });
  }
  // 周报 / 月报 of the calendar week and month gone by (the centre's Monday and 1st reports), and of a
  // month picked: ISO weeks (2026-W47, Monday to Sunday) and months as the API takes them
  function isoWeek(d) {
    var t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
    t.setUTCDate(t.getUTCDate() + 4 - (t.getUTCDay() || 7));  // the Thursday of its week names the year
    var year = t.getUTCFullYear();
    return year + "-W" + pad2(Math.ceil(((t - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7));
  }
  function reportLinks() {
    var now = new Date();
    var lastWeek = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 7);
    var lastMonth = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    var month = lastMonth.getFullYear() + "-" + pad2(lastMonth.getMonth() + 1);
    $("btn-report-last-week").href = "/api/console/report?week=" + isoWeek(lastWeek);
    $("btn-report-last-month").href = "/api/console/report?month=" + month;
    var pick = $("s-report-month"), pickWeek = $("s-report-week");
    pick.max = now.getFullYear() + "-" + pad2(now.getMonth() + 1);
    if (!pick.value) pick.value = month;
    pickWeek.max = isoWeek(now);
    if (!pickWeek.value) pickWeek.value = isoWeek(lastWeek);
    pickedReport();
  }
  function pickedReport() {  // a browser without the pickers takes the value as typed; the API says what is wrong
    var month = $("s-report-month").value, week = $("s-report-week").value;
    $("btn-report-pick").href = month ? "/api/console/report?month=" + month : "/api/console/report?days=30";
    $("btn-report-pick-week").href = week ? "/api/console/report?week=" + week : "/api/console/report?days=7";
  }
  function loadSupervisor() {
    loadSupervisor.at = Date.now();
    reportLinks();
    api("GET", "/stats").then(function (d) {
      $("s-queue").textContent = d.queue_length;
      $("s-operator").textContent = d.counts.operator || 0;
      $("s-frt-median").textContent = d.first_reply_s.median === null ? "—" : duration(d.first_reply_s.median);
      $("s-frt-p90").textContent = d.first_reply_s.p90 === null ? "—" : duration(d.first_reply_s.p90);
      renderService(d.service || []);
      renderCorrections(d.corrections || []);
      renderKnowledgeUse(d.knowledge);
      // a year ahead without its 放假安排: its 办理时限 count weekends only until IT adds it
      var missing = d.holidays_missing || [];
      $("s-holidays").hidden = !missing.length;
      $("s-holidays").textContent = missing.length ? missing.join("、") + "年的法定节假日安排尚未配置：办理时限跨入" +
        (missing.length > 1 ? "这些年份" : "该年") + "的工单暂只按周末计算（不含法定节假日和调休），超期判断可能提前。" +
        "国务院办公厅公布放假安排后，请信息部门写入节假日文件（config/holidays.yml）并重启网关，" +
        "再重新判定期间已办结、已签收工单是否超时（hotline admin rejudge）。" : "";
      $("s-overdue").textContent = d.overdue || 0;
      $("card-overdue").classList.toggle("alert", (d.overdue || 0) > 0);
      $("s-due-soon").textContent = d.due_soon || 0;
      $("card-due-soon").classList.toggle("alert", (d.due_soon || 0) > 0);
      $("s-urged").textContent = d.urged || 0;
      $("card-urged").classList.toggle("alert", (d.urged || 0) > 0);
      $("s-returned").textContent = d.returned || 0;
      $("card-returned").classList.toggle("alert", (d.returned || 0) > 0);
      $("s-redo").textContent = d.redo || 0;
      $("card-redo").classList.toggle("alert", (d.redo || 0) > 0);
      $("card-unanswered").hidden = !d.respond_limits;  // HOTLINE_RESPOND_HOURS 0 and 0: no limit to miss
      $("s-unanswered").textContent = d.unanswered || 0;
      $("card-unanswered").classList.toggle("alert", (d.unanswered || 0) > 0);
      $("s-extension-pending").textContent = d.extension_pending || 0;
      $("card-extension-pending").classList.toggle("alert", (d.extension_pending || 0) > 0);
      $("s-repeated").textContent = d.repeated || 0;
      $("card-repeated").classList.toggle("alert", (d.repeated || 0) > 0);
      var ops = $("s-operators");
      ops.textContent = "";
      d.operators.forEach(function (o) {
        var tr = el("tr");
        tr.appendChild(el("td", "", o.display_name + "（" + o.name + "）" + (o.disabled ? " 已停用" : "")));
        tr.appendChild(el("td", "", roleName(o)));
        tr.appendChild(el("td", "", o.conversations.length ? o.conversations.length + "：" + o.conversations.join("、") : "0"));
        tr.appendChild(accountActions(o));
        ops.appendChild(tr);
      });
      var w = $("s-waiting");
      w.textContent = "";
      d.longest_waiting.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", "", channelName(r.channel) + " " + senderOf(r.key, r.channel).slice(0, 10)));
        tr.appendChild(el("td", "", REASONS[r.reason] || r.reason));
        tr.appendChild(el("td", "", duration(r.waited_s)));
        tr.appendChild(el("td", "", r.last_text));
        w.appendChild(tr);
      });
    }).catch(function (e) { toast(e.message, true); });
    loadDead();
    if (Date.now() - (loadDepartments.at || 0) > 60000) { loadDepartments(); loadHotspots(); }  // they read the period's tickets
    api("GET", "/audit?limit=200").then(function (d) {
      var tb = $("s-audit");
      tb.textContent = "";
      d.entries.forEach(function (a) {
        var tr = el("tr");
        tr.setAttribute("data-action", a.action);
        tr.appendChild(el("td", "", clock(a.at)));
        tr.appendChild(el("td", "", a.actor));
        tr.appendChild(el("td", "", ACTIONS[a.action] || a.action));
        tr.appendChild(el("td", "", a.target));
        var det = Object.keys(a.detail || {}).map(function (k) { return k + "=" + a.detail[k]; }).join("，");
        tr.appendChild(el("td", "", det));
        tb.appendChild(tr);
      });
    }).catch(function () {});
  }
  // 重置密码 (a generated one, shown once, the account's browsers signed out) and 停用 / 启用, for another's account
  function accountActions(o) {
    var td = el("td", "account-actions");
    if (o.name === state.me.name) return td;
    var act2 = function (label, ask, path, done) {
      var b = el("button", "link", label);
      b.type = "button";
      b.addEventListener("click", function () {
        if (!window.confirm(ask)) return;
        api("POST", "/users/" + encodeURIComponent(o.name) + path, {}).then(done).catch(function (e) { toast(e.message, true); });
      });
      td.appendChild(b);
    };
    act2("重置密码", "重置 " + o.display_name + "（" + o.name + "）的密码？其已登录的浏览器将退出。", "/password", function (d) {
      $("u-result").textContent = o.name + " 的新密码（仅显示一次）：" + d.password;
    });
    if (!o.disabled) {
      act2("停用", "停用 " + o.display_name + "（" + o.name + "）的账号？其将不能再登录。", "/disable", function () {
        toast("已停用 " + o.name); loadSupervisor();
      });
    } else {
      act2("启用", "启用 " + o.display_name + "（" + o.name + "）的账号？其可用原密码登录（如已遗忘，请再重置密码）。", "/enable", function () {
        toast("已启用 " + o.name); loadSupervisor();
      });
    }
    return td;
  }
  // 受理 / 办结 / 回访 for today, 7 and 30 days: 满意率 = (满意 + 基本满意) / 参评 of the work resolved.
  function onTime(r) {  // 按期办结率, the late ones beside it (a cell of its own, not a title to hover)
    return percent(r.on_time_rate) + (r.done_late ? "（超期" + r.done_late + "）" : "");
  }
  function renderService(rows) {
    var tb = $("s-service");
    tb.textContent = "";
    rows.forEach(function (r) {
      var tr = el("tr");
      [r.label, r.filed, r.resolved, onTime(r), r.rated, percent(r.response_rate), percent(r.satisfaction), percent(r.solved_rate),
        (r.ratings["满意"] || 0) + " / " + (r.ratings["基本满意"] || 0) + " / " + (r.ratings["不满意"] || 0),
        r.urged || 0, r.redispatched || 0, r.merged || 0, r.withdrawn || 0, r.extended || 0
      ].forEach(function (v) { tr.appendChild(el("td", "", v)); });
      tb.appendChild(tr);
    });
    var last = rows[rows.length - 1];
    $("s-service-channels").textContent = last && last.filed ? last.label + "受理渠道：" + Object.keys(last.by_channel)
      .sort(function (a, b) { return last.by_channel[b] - last.by_channel[a]; })
      .map(function (c) { return channelName(c) + " " + last.by_channel[c]; }).join("，") : "";
  }
  // 知识库答复: which answers the bot gives most, and whether citizens found them solved the matter
  // (解决率 = 已解决 / (已解决 + 未解决); those who said neither are not counted). An entry since
  // switched off or deleted keeps its question, marked; one nothing is known of shows its id.
  var KB_GONE = { disabled: "已停用", deleted: "已删除" };
  // 更正统计: what operators changed into what in 30 days, a rule to fix where a pair keeps coming back
  function renderCorrections(rows) {
    [["category", "s-fix-category"], ["departments", "s-fix-departments"]].forEach(function (part) {
      var tb = $(part[1]);
      tb.textContent = "";
      var mine = rows.filter(function (r) { return r.field === part[0]; });
      if (!mine.length) {
        var none = el("tr");
        var td = el("td", "muted", "暂无");
        td.colSpan = part[0] === "category" ? 3 : 4;
        none.appendChild(td);
        tb.appendChild(none);
      }
      mine.forEach(function (r) {
        var tr = el("tr");
        (part[0] === "category" ? [r.before || "未分类", r.after || "未分类", r.count]
          : [r.category || "未分类", r.before || "—", r.after || "—", r.count]).forEach(function (v) { tr.appendChild(el("td", "", v)); });
        tb.appendChild(tr);
      });
    });
  }
  function renderKnowledgeUse(k) {
    var tb = $("s-kb");
    tb.textContent = "";
    if (!k || !k.enabled) { $("s-kb-totals").textContent = KB_OFF + "，机器人不按知识库答复"; return; }
    var t = k.totals;
    $("s-kb-totals").textContent = "共答复 " + t.answered + " 次，市民表示已解决 " + t.solved + " 次、未解决 " + t.unsolved +
      " 次（未解决的已转为登记工单）";
    k.entries.forEach(function (r) {
      var judged = r.solved + r.unsolved;
      var tr = el("tr");
      tr.setAttribute("data-id", r.id);
      tr.setAttribute("data-state", r.state || "active");
      var q = el("td", r.state === "unknown" ? "muted" : "", r.question);
      if (KB_GONE[r.state]) q.appendChild(el("span", "badge kb-gone", KB_GONE[r.state]));
      tr.appendChild(q);
      [r.answered, r.solved, r.unsolved, judged ? percent(r.solved / judged) : "—"]
        .forEach(function (v) { tr.appendChild(el("td", "", String(v))); });
      tb.appendChild(tr);
    });
    if (!k.entries.length) {
      var tr = el("tr");
      var td = el("td", "muted", "近30天暂无知识库答复");
      td.colSpan = 5;
      tr.appendChild(td);
      tb.appendChild(tr);
    }
  }
  // Filings, deliveries and bot turns that kept failing: retried or discarded one by one. A
  // supervisor sees at a glance, from the desk too, that something did.
  function deadCount(n) {
    $("tab-super").textContent = "班长视图" + (n ? "（" + n + "条异常）" : "");
    $("s-dead-count").textContent = n;
    $("card-dead").classList.toggle("alert", n > 0);
  }
  function loadDead() {
    api("GET", "/dead-letters").then(function (d) {
      deadCount(d.count);
      $("s-dead-empty").hidden = d.items.length > 0;
      var tb = $("s-dead");
      tb.textContent = "";
      d.items.forEach(function (x) {
        var tr = el("tr");
        tr.setAttribute("data-ref", x.ref);
        tr.appendChild(el("td", "", clock(x.at)));
        var kind = DEAD_KINDS[x.kind] || x.kind;
        if (x.message_kind) kind += "（" + (MESSAGE_KINDS[x.message_kind] || x.message_kind) + "）";
        tr.appendChild(el("td", "", kind));
        tr.appendChild(el("td", "", (channelName(x.channel) + " " + senderOf(x.key, x.channel)).trim()));
        tr.appendChild(el("td", "", (x.ticket_id ? x.ticket_id + " " : "") + x.text));
        tr.appendChild(el("td", "", x.reason));
        var cell = el("td");
        var retry = el("button", "", "重试");
        retry.type = "button";
        retry.addEventListener("click", function () { settleDead(x.ref, true); });
        var drop = el("button", "link", "丢弃");
        drop.type = "button";
        drop.addEventListener("click", function () {
          if (window.confirm("丢弃后不再处理这条记录，确定吗？")) settleDead(x.ref, false);
        });
        cell.appendChild(retry);
        cell.appendChild(drop);
        tr.appendChild(cell);
        tb.appendChild(tr);
      });
    }).catch(function (e) { toast(e.message, true); });
  }
  function settleDead(ref, retry) {
    act(api("POST", "/dead-letters/settle", { ref: ref, retry: retry }), retry ? "已重新提交" : "已丢弃")
      .catch(function () {}).then(loadDead);
  }
  // --- 工单查询: a ticket by number, phone, sender or words, in full --------------------------------
  var lookup = { rows: [], shown: "", more: false, q: "" };
  function dateTime(ts) {
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + clock(ts);
  }
  function fillLookupFilters() {
    var st = $("lq-status");
    if (st.options.length === 1) {
      Object.keys(STATUS).forEach(function (k) { var o = el("option", "", STATUS[k]); o.value = k; st.appendChild(o); });
    }
    var ch = $("lq-channel"), known = {};
    Array.prototype.forEach.call(ch.options, function (o) { known[o.value] = true; });
    var names = Object.keys(CHANNELS).concat(Object.keys(state.channelNames || {}), ["portal:"]);
    names.forEach(function (c) {
      if (known[c]) return;
      var o = el("option", "", c === "portal:" ? "全部网站留言" : channelName(c));
      o.value = c;
      ch.appendChild(o);
      known[c] = true;
    });
  }
  // 导出 of what 工单查询's filters find (common.js's downloadCsv counts the rows as they come)
  function exportTickets() {
    C.downloadCsv($("lq-export"), "/api/console/tickets.csv?" + lookupParams().toString(), "tickets.csv");
  }

  function lookupParams() {
    var params = new URLSearchParams();
    var q = $("lq").value.trim();
    if (q) params.set("q", q);
    if ($("lq-status").value) params.set("status", $("lq-status").value);
    if ($("lq-channel").value) params.set("channel", $("lq-channel").value);
    params.set("days", $("lq-days").value);
    if ($("lq-urgent").checked) params.set("urgent", "true");
    if ($("lq-overdue").checked) params.set("overdue", "true");
    if ($("lq-due-soon").checked) params.set("due_soon", "true");
    if ($("lq-urged").checked) params.set("urged", "true");
    if ($("lq-reviewed").checked) params.set("reviewed", "true");
    if ($("lq-returned").checked) params.set("returned", "true");
    if ($("lq-done-late").checked) params.set("done_late", "true");
    if ($("lq-unanswered").checked) params.set("unanswered", "true");
    if ($("lq-extended").checked) params.set("extended", "true");
    if ($("lq-extension-pending").checked) params.set("extension_pending", "true");
    if ($("lq-repeated").checked) params.set("repeated", "true");
    if ($("lq-department").value.trim()) params.set("department", $("lq-department").value.trim());
    if ($("lq-category").value.trim()) params.set("category", $("lq-category").value.trim());
    if ($("lq-rating").value) params.set("rating", $("lq-rating").value);
    if ($("lq-solved").value) params.set("solved", $("lq-solved").value);
    return params;
  }
  function searchTickets(more) {
    var params = lookupParams();
    var q = params.get("q") || "";
    if (more) params.set("offset", String(lookup.rows.length));
    return api("GET", "/tickets?" + params.toString()).then(function (d) {
      lookup.rows = more ? lookup.rows.concat(d.tickets) : d.tickets;
      lookup.more = d.more;
      lookup.q = q;
      renderResults();
      // a number (or a phone with one ticket) goes straight to the ticket
      if (!more && lookup.rows.length === 1) showTicket(lookup.rows[0].ticket_id);
    }).catch(function (e) { toast(e.message, true); });
  }
  function renderResults() {
    var q = lookup.q;
    var tb = $("lq-results");
    tb.textContent = "";
    lookup.rows.forEach(function (t) {
      var tr = el("tr");
      tr.setAttribute("data-ticket-id", t.ticket_id);
      tr.classList.toggle("selected", t.ticket_id === lookup.shown);
      tr.tabIndex = 0;
      var id = el("td", "tid", t.ticket_id);
      if (t.urgent) id.appendChild(el("span", "badge urgent", "紧急"));
      if (t.overdue) id.appendChild(el("span", "badge overdue", "超期"));
      if (t.due_soon) id.appendChild(el("span", "badge due-soon", "即将超期"));
      if (t.done_late) id.appendChild(el("span", "badge late", "超期办结"));
      if (t.unanswered) id.appendChild(el("span", "badge late", "超时未签收"));
      if (t.extended_until) id.appendChild(el("span", "badge extended", "已延期"));
      if (t.extension_pending) id.appendChild(el("span", "badge asked", "延期待审"));
      if (t.urges) id.appendChild(el("span", "badge urged", "催办" + t.urges + "次"));
      if (t.merged_into) id.appendChild(el("span", "badge merged", "并单"));
      if (t.repeats) {  // 疑似重复: other open tickets about the same spot (merging.repeats)
        var rep = el("span", "badge repeat", "疑似重复" + t.repeats);
        rep.title = "同一地点近30天还有 " + t.repeats + " 件同类未办结工单，点开可并单";
        id.appendChild(rep);
      }
      tr.appendChild(id);
      tr.appendChild(el("td", "", dateTime(t.created_at)));
      tr.appendChild(el("td", "", channelName(t.channel)));
      tr.appendChild(el("td", "", t.title || "（无标题）"));
      tr.appendChild(el("td", "", (t.category || []).join(" / ")));
      tr.appendChild(el("td", "", statusOf(t)));
      tr.appendChild(el("td", "", t.rating || ""));
      tr.addEventListener("click", function () { showTicket(t.ticket_id); });
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") showTicket(t.ticket_id); });
      tb.appendChild(tr);
    });
    $("lq-empty").hidden = lookup.rows.length > 0;
    $("lq-empty").textContent = q ? "没有找到与“" + q + "”相符的工单（可放宽状态、渠道或时间范围）" : "该范围内没有工单";
    $("lq-more").hidden = !lookup.more;
  }
  function additions(t, merged) {  // 市民补充 of a ticket, and of those merged into it (a main)
    var theirs = merged.filter(function (f) { return f.kind === "info"; }).length;
    if (!t.additions && !theirs) return "";
    return (t.additions + theirs) + " 条" + (theirs ? "（含并入工单的 " + theirs + " 条，" : "（") + "见办理记录）";
  }
  function rowShown(t) {  // what a row of the list shows of a ticket
    return JSON.stringify([t.status, t.withdrawn_at, t.category, t.title, t.urgent, t.overdue, t.due_soon, t.done_late, t.unanswered, t.extended_until, t.extension_pending, t.urges, t.rating, t.merged_into, t.repeats]);
  }
  function showTicket(id) {
    lookup.shown = id;
    document.querySelectorAll("#lq-results tr").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-ticket-id") === id);
    });
    return api("GET", "/tickets/" + encodeURIComponent(id)).then(function (d) {
      if (lookup.shown === id) renderTicket(d);
    }).catch(function (e) { toast(e.message, true); });
  }
  function renderTicket(d) {
    var t = d.ticket;
    // the list shows what the ticket is now (a status moved or a 更正 saved here), without searching again
    var i = lookup.rows.findIndex(function (r) { return r.ticket_id === t.ticket_id; });
    if (i >= 0 && rowShown(lookup.rows[i]) !== rowShown(t)) { lookup.rows[i] = t; renderResults(); }
    $("ld-empty").hidden = true;
    $("ld").hidden = false;
    $("ld").setAttribute("data-ticket-id", t.ticket_id);
    $("ld-title").textContent = t.ticket_id + " · " + (t.title || "（无标题）");
    C.fields($("ld-fields"), t, [
      ["状态", statusOf(t)],
      ["平台编号", t.platform_request_id || ""],
      ["受理时间", dateTime(t.created_at)]
    ].concat(C.timeRows(t, dateTime), [
      ["市民补充", additions(t, d.merged_followups || [])],
      ["协办意见", t.assists ? t.assists + " 条（见办理记录）" : ""],
      ["并单", t.merged_into ? "已并入工单 " + t.merged_into + "（随主单办理）"
        : (d.merged || []).length ? "并入本单 " + d.merged.length + " 件" : ""],
      ["疑似重复", t.repeats ? "同一地点近30天还有 " + t.repeats + " 件同类未办结工单（见下方并单）" : ""],
      ["渠道", channelName(t.channel) + " · " + senderOf(t.conversation_key, t.channel)]
    ], C.matterRows(t), [
      ["承办部门", (t.departments || []).join("、") || "—"],
      ["问题描述", t.description],
      ["附件", t.attachments ? t.attachments + " 个" : ""],
      ["市民评价", t.rating ? t.rating + (t.rating_comment ? "：" + t.rating_comment : "") : ((t.status === "resolved" || t.status === "closed") && !t.withdrawn_at ? "尚未评价" : "")],
      ["解决情况", t.solved === true ? "已解决" : t.solved === false ? "未解决" : ""]
    ]), "/api/console/tickets/" + encodeURIComponent(t.ticket_id) + "/attachments/");
    var ol = $("ld-history");
    ol.textContent = "";
    // the steps of the work, the citizen's 催办 and 补充 and the 协办's 协办意见, in the order they came
    var revisions = (t.revisions || []).map(function (r) {
      return { at: r.at, kind: "revision", label: r.dispatched ? "改派" : Object.keys(r.after).length ? "更正" : "审核无误",
               note: r.by + (Object.keys(r.after).length ? "：" + revisionText(r) : "") + (r.reason ? "（" + r.reason + "）" : "") };
    });
    // a main also shows what the citizens of the tickets merged into it added or pressed for
    var steps = t.history.concat(t.followups || [], d.merged_followups || [], revisions);
    steps.sort(function (a, b) { return a.at - b.at; });
    steps.forEach(function (h) {
      var li = el("li");
      li.appendChild(el("span", "muted", dateTime(h.at)));
      li.setAttribute("data-kind", h.kind || "status");
      var whose = h.ticket_id && h.ticket_id !== t.ticket_id ? "（并入工单 " + h.ticket_id + "）" : "";
      if (whose) li.classList.add("merged-followup");
      li.appendChild(el("b", "", (h.label || C.stepLabel(h, STATUS)) + whose));
      if (h.note) li.appendChild(el("span", "", h.note));
      ol.appendChild(li);
    });
    var actions = $("ld-actions");
    actions.textContent = "";
    var open = el("button", "", d.conversation ? "打开会话" : "会话已不在工作台");
    open.type = "button";
    open.disabled = !d.conversation;
    open.addEventListener("click", function () { show("desk"); select(t.conversation_key); });
    actions.appendChild(open);
    if (d.status_by_platform) actions.appendChild(el("p", "muted small", "工单状态由工单平台管理"));
    else if (t.merged_into) {
      actions.appendChild(el("p", "muted small", "本工单随主单办理，状态和办理进展在主单上填写"));
      actions.appendChild(withdrawControls(t, function () { showTicket(t.ticket_id); }));  // its citizen's own
    } else actions.appendChild(ticketControls(t, function () { showTicket(t.ticket_id); }));
    if (!d.status_by_platform && ((t.extension_requests || []).length || t.due_at && !t.merged_into &&
        t.status !== "resolved" && t.status !== "closed")) {
      actions.appendChild(extensionControls(t, function () { showTicket(t.ticket_id); }));
    }
    if (t.status !== "resolved" && t.status !== "closed") actions.appendChild(urgeControls(t));
    actions.appendChild(correctControls(t, d.status_by_platform));
    if (!d.status_by_platform) actions.appendChild(mergeControls(t, d.merged || []));
  }
  // 并单: the same matter reported again (a burst main, a dark street) goes with one main ticket,
  // which the department handles once; each citizen still hears every step on their own channel.
  function mergeControls(t, followers) {
    var path = "/tickets/" + encodeURIComponent(t.ticket_id);
    var box = el("details", "merge-box");
    var row = el("div", "merge-actions");
    var button = function (label, cls, onclick) {
      var b = el("button", cls, label); b.type = "button"; b.addEventListener("click", onclick); return b;
    };
    if (t.merged_into) {
      box.open = true;
      box.appendChild(el("summary", "", "已并入工单 " + t.merged_into));
      box.appendChild(el("p", "small", "本工单随主单办理：主单的每一步状态和办理进展都同步告知本工单的市民。"));
      row.appendChild(button("查看主单", "link", function () { showTicket(t.merged_into); }));
      row.appendChild(button("取消并单", "", function () {
        api("POST", path + "/unmerge", {}).then(function () {
          toast("已取消并单，工单改为单独办理"); showTicket(t.ticket_id);
        }).catch(function (e) { toast(e.message, true); });
      }));
      box.appendChild(row);
      return box;
    }
    box.appendChild(el("summary", "", followers.length ? "并单（已并入本单 " + followers.length + " 件）"
      : t.repeats ? "并单（疑似重复 " + t.repeats + " 件）" : "并单（同一事项重复反映）"));
    if (followers.length) {  // a main: the tickets that follow it
      box.appendChild(el("p", "small", "以下工单随本单办理，本单的状态和办理进展同步告知其市民："));
      var ul = el("ul", "merged-list");
      followers.forEach(function (x) {
        var li = el("li");
        li.appendChild(button(x.ticket_id, "link", function () { showTicket(x.ticket_id); }));
        li.appendChild(el("span", "muted", " " + (x.title || "（无标题）") + " · " + statusOf(x) + " "));
        if (x.urges) li.appendChild(el("span", "badge urged", "催办" + x.urges + "次"));  // its citizen pressed for it
        ul.appendChild(li);
      });
      box.appendChild(ul);
      return box;
    }
    if (t.status === "resolved" || t.status === "closed") {
      box.appendChild(el("p", "muted small", "工单已办结，不能并入其他工单"));
      return box;
    }
    var reason = el("input");
    reason.placeholder = "并单说明（内部记录，不发给市民）";
    reason.maxLength = 200;
    var merge = function (into) {
      api("POST", path + "/merge", { into: into, reason: reason.value.trim() }).then(function () {
        toast("已并入工单 " + into + "，市民将收到合并办理的通知"); showTicket(t.ticket_id);
      }).catch(function (e) { toast(e.message, true); });
    };
    var similar = el("div", "similar");
    similar.appendChild(el("p", "muted small", "正在查找同一地点近30天未办结的工单…"));
    box.appendChild(similar);
    box.addEventListener("toggle", function () {
      if (!box.open || similar.getAttribute("data-loaded")) return;
      similar.setAttribute("data-loaded", "1");
      api("GET", path + "/similar").then(function (d) {
        similar.textContent = "";
        if (!d.tickets.length) {
          similar.appendChild(el("p", "muted small", d.place ? "“" + d.place + "”近30天没有其他未办结的工单" : "本工单没有地点，无法查找可能重复的工单"));
          return;
        }
        similar.appendChild(el("p", "small", "可能重复（“" + d.place + "”近30天未办结）："));
        var repeats = d.tickets.filter(function (x) { return x.same_spot; });
        var first = repeats.reduce(function (a, x) { return x.created_at < a.created_at ? x : a; }, t);
        if (first !== t) {  // a burst goes into its first report: offer to go there
          similar.appendChild(button("打开最早的工单 " + first.ticket_id + "（在其上全部并入）", "link", function () {
            showTicket(first.ticket_id);
          }));
        } else if (repeats.length) {  // a burst: every 疑似重复 into this one, its first report, at once
          similar.appendChild(button("全部并入本单（" + repeats.length + "件疑似重复）", "gather", function () {
            api("POST", path + "/gather", { tickets: repeats.map(function (x) { return x.ticket_id; }), reason: reason.value.trim() })
              .then(function (r) {
                var said = r.merged.length ? "已将 " + r.merged.length + " 件并入本单，各自的市民将收到合并办理的通知" : "没有工单并入本单";
                r.refused.forEach(function (x) { said += "；" + x.ticket_id + "：" + x.reason; });
                toast(said, r.refused.length > 0); showTicket(t.ticket_id);
              }).catch(function (e) { toast(e.message, true); });
          }));
        }
        var list = el("ul", "similar-list");
        d.tickets.forEach(function (x) {
          var li = el("li");
          li.setAttribute("data-ticket-id", x.ticket_id);
          if (x.same_spot) li.appendChild(el("span", "badge repeat", "疑似重复"));
          li.appendChild(button(x.ticket_id, "link", function () { showTicket(x.ticket_id); }));
          li.appendChild(el("span", "", " " + (x.title || "（无标题）") + " · " + (x.category || []).join("/") + " · " + statusOf(x) + " "));
          li.appendChild(button("并入此单", "", function () { merge(x.ticket_id); }));
          list.appendChild(li);
        });
        similar.appendChild(list);
      }).catch(function (e) { similar.textContent = ""; toast(e.message, true); });
    });
    if (t.repeats) box.open = true;  // 疑似重复: the candidates are listed at once
    var into = el("input");
    into.placeholder = "主单编号";
    into.maxLength = 64;
    into.className = "merge-into";
    row.appendChild(into);
    row.appendChild(reason);
    row.appendChild(button("并入主单", "", function () {
      if (!into.value.trim()) { toast("请填写主单编号", true); return; }
      merge(into.value.trim());
    }));
    box.appendChild(row);
    return box;
  }
  // 更正 / 改派 / 审核无误: how the ticket was read (分类, 诉求类型, 紧急, 地点) and who handles it (承办部门),
  // as an operator finds them. A ticket its department 退回 goes out again to the departments given
  // (已派单: the citizen hears it); a done one keeps its departments. Each is kept with who, when
  // and why (the reason is the centre's: the citizen never sees it), and is a label for the NLU.
  var FIELD_NAMES = { category: "分类", request_type: "诉求类型", urgent: "紧急", location: "地点", departments: "承办部门" };
  function shownValue(name, v) {
    if (typeof v === "boolean") return v ? "是" : "否";
    if (Array.isArray(v)) return v.join(name === "category" ? "/" : "、") || "—";
    return v || "—";
  }
  function revisionText(r) {
    return Object.keys(r.after).map(function (k) {
      return FIELD_NAMES[k] + " " + shownValue(k, r.before[k]) + " → " + shownValue(k, r.after[k]);
    }).join("；");
  }
  var routing = null;  // the taxonomy's categories and the department map's units, asked once
  function loadRouting() {
    if (!routing) {
      routing = api("GET", "/routing").then(function (d) {
        [["routing-categories", d.categories], ["routing-units", d.departments]].forEach(function (pair) {
          var list = $(pair[0]);
          pair[1].forEach(function (c) { var o = el("option"); o.value = c; list.appendChild(o); });
        });
        return d;
      }).catch(function (e) { routing = null; throw e; });
    }
    return routing;
  }
  function correctControls(t, platformRoutes) {
    var done = t.status === "resolved" || t.status === "closed";
    var redispatch = t.status === "returned" && !platformRoutes && !t.merged_into;
    var box = el("details", "correct-box");
    box.open = redispatch;
    box.appendChild(el("summary", "", redispatch ? "改派（承办单位已退回，请重新派单）" : "更正分类 / 改派"));
    var split = function (v, re) { return v.split(re).map(function (x) { return x.trim(); }).filter(Boolean); };
    var field = function (label, input) {
      var row = el("label", "correct-field");
      row.appendChild(el("span", "", label));
      row.appendChild(input);
      box.appendChild(row);
      return input;
    };
    var cat = field("分类", el("input"));
    cat.value = (t.category || []).join("/");
    cat.placeholder = "一级/二级/三级";
    cat.maxLength = 130;
    cat.setAttribute("list", "routing-categories");
    cat.addEventListener("focus", function () { loadRouting().catch(function () {}); });
    var type = field("诉求类型", el("select"));
    Array.prototype.forEach.call($("tf-type").options, function (x) {  // the ticket form's six types
      var o = el("option", "", x.value || "未指定"); o.value = x.value; type.appendChild(o);
    });
    type.value = t.request_type || "";
    var urgent = field("紧急", el("input"));
    urgent.type = "checkbox";
    urgent.checked = !!t.urgent;
    var place = field("地点", el("input"));  // 属地有误: the place as it should read
    place.value = t.location || "";
    place.placeholder = "区、街道、道路门牌、小区或地标";
    place.maxLength = 200;
    var deps = field("承办部门", el("input"));
    deps.value = (t.departments || []).join("，");
    deps.placeholder = "主办，协办…";
    deps.disabled = platformRoutes || done || !!t.merged_into;
    if (platformRoutes) box.appendChild(el("p", "muted small", "派单由工单平台管理，此处只更正分类和地点"));
    else if (t.merged_into) box.appendChild(el("p", "muted small", "已并入其他工单，承办部门随主单"));
    else if (done) box.appendChild(el("p", "muted small", "工单已办结，只能更正分类和地点"));
    var reason = field(redispatch ? "改派原因" : "说明", el("input"));
    reason.placeholder = "内部记录，不发给市民（可选常用原因）";
    reason.maxLength = 200;
    reason.setAttribute("list", "correct-reasons");
    var row = el("div", "correct-actions");
    var suggest = el("button", "link", "按分类和属地建议承办部门");
    suggest.type = "button";
    suggest.hidden = deps.disabled;
    suggest.addEventListener("click", function () {
      api("GET", "/routing?category=" + encodeURIComponent(cat.value.trim()) +
          "&location=" + encodeURIComponent(place.value.trim())).then(function (d) {
        deps.value = d.suggested.join("，");
      }).catch(function (e) { toast(e.message, true); });
    });
    var save = el("button", "", redispatch ? "改派" : "保存更正");
    save.type = "button";
    var ok = el("button", "", "审核无误");
    ok.type = "button";
    ok.title = "分类、诉求类型和承办部门无误（记入质检）";
    var send = function (body) {
      return api("POST", "/tickets/" + encodeURIComponent(t.ticket_id) + "/correct", body).then(function (r) {
        var last = r.revisions[r.revisions.length - 1];
        toast(last && last.dispatched ? "已改派，市民将收到派单通知" : last && Object.keys(last.after).length ? "已保存更正" : "已记录：审核无误");
        showTicket(t.ticket_id);
      }).catch(function (e) { toast(e.message, true); });
    };
    save.addEventListener("click", function () {
      var body = { category: split(cat.value, /[\/／]/).slice(0, 3), request_type: type.value, urgent: urgent.checked,
                   location: place.value.trim(), reason: reason.value.trim() };
      if (!deps.disabled) body.departments = split(deps.value, /[,，、]/).slice(0, 6);
      if (redispatch && !body.departments.length) { toast("请填写改派的承办部门", true); return; }
      send(body);
    });
    ok.addEventListener("click", function () { send({ reason: reason.value.trim() }); });
    row.appendChild(suggest); row.appendChild(save); row.appendChild(ok);
    box.appendChild(row);
    return box;
  }
  // 来电催办: a caller presses for the ticket; recorded once a day, as the bot does in a chat
  function urgeControls(t) {
    var row = el("div", "urge-row");
    var note = el("input");
    note.placeholder = "催办说明（选填，如：市民来电催办，路灯仍未修复）";
    note.maxLength = 190;
    var btn = el("button", "", "登记催办");
    btn.type = "button";
    btn.addEventListener("click", function () {
      api("POST", "/tickets/" + encodeURIComponent(t.ticket_id) + "/urge", { note: note.value }).then(function (d) {
        toast(d.recorded ? "已登记催办（该工单第" + d.ticket.urges + "次催办）"
          : "该工单已于 " + dateTime(d.at) + " 催办，" + d.quiet + "内不重复登记");
        showTicket(t.ticket_id);
      }).catch(function (e) { toast(e.message, true); });
    });
    row.appendChild(note); row.appendChild(btn);
    return row;
  }
  // --- 知识库维护: the answers the bot gives, from the file and the console's edits. Everyone reads
  // them; supervisors edit, and the bot answers from an edit within seconds ------------------------
  // An edit the file holds already (IT folded the export into it) is 已并入文件: it changes
  // nothing, and one button clears all of them. Turned off (HOTLINE_KNOWLEDGE_FILE empty), the tab
  // lists nothing and says so; the console's edits wait in the system meanwhile.
  var ORIGINS = { file: "文件", console: "控制台新增", edited: "已修改", disabled: "已停用", folded: "已并入文件" };
  var kadmin = { rows: [], shown: "", creating: false, file: "", editable: false, enabled: true };
  function kaKind(r) { return r.folded ? "folded" : r.origin; }
  function loadKnowledgeAdmin(reshow) {
    return api("GET", "/knowledge/entries").then(function (d) {
      kadmin.rows = d.entries;
      kadmin.file = d.file;
      kadmin.editable = d.editable;
      kadmin.enabled = d.enabled;
      $("ka-error").hidden = !d.error;
      $("ka-error").textContent = d.error ? "控制台的修改与知识库文件冲突，机器人仍按上一版答复。请修改或删除冲突的条目：" + d.error : "";
      $("ka-file-error").hidden = !d.file_error;
      $("ka-file-error").textContent = d.file_error ? "知识库文件（" + d.file + "）现在无法使用，机器人仍按此前可用的内容答复；" +
        "请信息部门用 hotline knowledge check 检查：" + d.file_error.split("\n")[0] : "";
      $("ka-off").hidden = d.enabled;
      $("ka-off").textContent = d.enabled ? "" : KB_OFF + "：机器人不按知识库答复（控制台新增的条目也不答复），坐席也无法搜索知识库；" +
        "关闭期间不能修改。" + (d.kept ? "控制台此前保存的 " + d.kept + " 条修改仍保留，信息部门重新开启知识库后继续生效。" : "");
      ["ka-new", "ka-export", "ka-q", "ka-origin"].forEach(function (id) { $(id).hidden = !d.enabled; });
      $("ka-clear").hidden = !d.editable || !d.folded;
      $("ka-clear").textContent = "清除已并入文件的修改（" + d.folded + "）";
      if (!d.enabled) { clearEntry(); $("ka-none").hidden = true; }
      renderKnowledgeAdmin();
      var row = kadmin.rows.find(function (r) { return r.id === kadmin.shown; });
      if (reshow && row) showEntry(row);
      else if (reshow) clearEntry();
    }).catch(function (e) { toast(e.message, true); });
  }
  function kaMatches(r, q) {
    if (!q) return true;
    return [r.id, r.question, r.answer, r.source].concat(r.also).join("\n").toLowerCase().indexOf(q) >= 0;
  }
  function renderKnowledgeAdmin() {
    var q = $("ka-q").value.trim().toLowerCase(), origin = $("ka-origin").value;
    var counts = { file: 0, console: 0, edited: 0, disabled: 0, folded: 0 }, inUse = 0;
    kadmin.rows.forEach(function (r) { counts[kaKind(r)] += 1; if (r.origin !== "disabled") inUse += 1; });
    $("ka-summary").textContent = !kadmin.enabled ? "" : "机器人在用 " + inUse + " 条；文件 " + counts.file +
      "，控制台新增 " + counts.console + "，已修改 " + counts.edited + "，已并入文件 " + counts.folded +
      "，已停用 " + counts.disabled + (kadmin.file ? "；知识库文件：" + kadmin.file : "");
    var ul = $("ka-entries");
    ul.textContent = "";
    var rows = kadmin.rows.filter(function (r) { return (!origin || kaKind(r) === origin) && kaMatches(r, q); });
    rows.forEach(function (r) {
      var li = el("li", "ka-entry" + (r.id === kadmin.shown ? " selected" : ""));
      li.setAttribute("data-id", r.id);
      li.setAttribute("data-origin", r.origin);
      li.setAttribute("data-folded", String(!!r.folded));
      li.tabIndex = 0;
      var top = el("div", "ka-top");
      top.appendChild(el("span", "ka-q", r.question));
      top.appendChild(el("span", "badge origin-" + kaKind(r), ORIGINS[kaKind(r)] || r.origin));
      li.appendChild(top);
      li.appendChild(el("div", "ka-a", r.answer));
      var gone = r.folded && r.origin === "disabled";  // a 停用 record of an entry the file no longer has
      li.appendChild(el("div", "ka-meta", (gone ? ["控制台停用的记录，文件中已删除该条", r.id] : ["相似问 " + r.also.length + " 条",
        r.source, r.updated ? r.updated + " 更新" : "", r.id]).filter(Boolean).join(" · ")));
      li.addEventListener("click", function () { showEntry(r); });
      li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") showEntry(r); });
      ul.appendChild(li);
    });
    $("ka-empty").hidden = rows.length > 0 || !kadmin.enabled;
  }
  function clearEntry() {
    kadmin.shown = "";
    kadmin.creating = false;
    $("ka-edit").hidden = true;
    $("ka-none").hidden = false;
  }
  function fillEntry(r) {
    $("ka-id").value = r.id;
    $("ka-question").value = r.question;
    $("ka-also").value = r.also.join("\n");
    $("ka-answer").value = r.answer;
    $("ka-source").value = r.source;
    $("ka-keywords").value = r.keywords.join("，");
    $("ka-problem").textContent = "";
    $("ka-warnings").textContent = "";
    var editable = kadmin.editable && !(r.folded && r.origin === "disabled");  // a 停用 record has nothing to edit
    ["ka-question", "ka-also", "ka-answer", "ka-source", "ka-keywords"].forEach(function (id) { $(id).readOnly = !editable; });
    $("ka-actions").hidden = !editable;
    $("ka-edit").hidden = false;
    $("ka-none").hidden = true;
  }
  function showEntry(r) {
    kadmin.shown = r.id;
    kadmin.creating = false;
    document.querySelectorAll("#ka-entries .ka-entry").forEach(function (li) {
      li.classList.toggle("selected", li.getAttribute("data-id") === r.id);
    });
    fillEntry(r);
    $("ka-edit").setAttribute("data-id", r.id);
    $("ka-edit").setAttribute("data-origin", r.origin);
    $("ka-edit").setAttribute("data-folded", String(!!r.folded));
    $("ka-title").textContent = r.question;
    var meta = ["编号 " + r.id, ORIGINS[kaKind(r)] || r.origin];
    if (r.origin === "file" && kadmin.file) meta[1] += "（" + kadmin.file + "）";
    if (r.updated) meta.push(r.updated + " 更新");
    if (r.edited_by) meta.push(r.edited_by + " 于 " + dateTime(r.edited_at) + (r.origin === "disabled" ? " 停用" : " 修改"));
    var note = "";
    if (r.folded && r.origin === "disabled") note = "。该条在控制台停用后，知识库文件中也已删除；这条停用记录可用“清除已并入文件的修改”清除";
    else if (r.folded) note = "。控制台的修改已与知识库文件中的该条一致，可用“清除已并入文件的修改”清除，机器人的答复不变";
    else if (r.origin === "disabled") note = "。机器人不再用该条答复，可恢复为文件版本";
    $("ka-meta").textContent = meta.join(" · ") + note;
    $("ka-id-label").hidden = true;
    $("ka-remove").hidden = r.origin === "disabled";
    $("ka-remove").textContent = r.origin === "console" ? "删除" : "停用";
    $("ka-restore").hidden = r.origin !== "edited" && r.origin !== "disabled";
  }
  function newEntry() {
    clearEntry();
    kadmin.creating = true;
    renderKnowledgeAdmin();
    fillEntry({ id: "", question: "", also: [], answer: "", source: "", keywords: [] });
    $("ka-edit").setAttribute("data-id", "");
    $("ka-edit").setAttribute("data-origin", "");
    $("ka-edit").setAttribute("data-folded", "false");
    $("ka-title").textContent = "新增条目";
    $("ka-meta").textContent = "保存后机器人几秒内即可按该条答复";
    $("ka-id-label").hidden = false;
    $("ka-remove").hidden = true;
    $("ka-restore").hidden = true;
    $("ka-id").focus();
  }
  function readEntry() {
    var lines = function (v, re) { return v.split(re).map(function (x) { return x.trim(); }).filter(Boolean); };
    return {
      question: $("ka-question").value.trim(), also: lines($("ka-also").value, /\n/),
      answer: $("ka-answer").value.trim(), source: $("ka-source").value.trim(),
      keywords: lines($("ka-keywords").value, /[,，、\s]+/)
    };
  }
  function saveEntry() {
    var id = kadmin.creating ? $("ka-id").value.trim() : kadmin.shown;
    $("ka-problem").textContent = "";
    $("ka-warnings").textContent = "";
    if (!id) { $("ka-problem").textContent = "请填写编号"; $("ka-id").focus(); return; }
    var path = "/knowledge/entries/" + encodeURIComponent(id) + (kadmin.creating ? "?new=true" : "");
    $("ka-save").disabled = true;
    api("PUT", path, readEntry()).then(function (d) {
      kadmin.shown = d.entry.id;
      kadmin.creating = false;
      toast(d.created ? "已新增，机器人几秒内即可按该条答复" : "已保存，机器人几秒内即按新答复口径回答");
      return loadKnowledgeAdmin(true).then(function () {
        d.warnings.forEach(function (w) { $("ka-warnings").appendChild(el("li", "", w)); });
      });
    }).catch(function (e) { $("ka-problem").textContent = e.message; })
      .then(function () { $("ka-save").disabled = false; });
  }
  function removeEntry() {
    var r = kadmin.rows.find(function (x) { return x.id === kadmin.shown; });
    if (!r) return;
    var removing = r.origin === "console";
    if (!window.confirm(removing ? "删除后该条目不再使用，确定删除吗？" : "停用后机器人不再用该条答复（可恢复为文件版本），确定停用吗？")) return;
    act(api("DELETE", "/knowledge/entries/" + encodeURIComponent(r.id)), removing ? "已删除" : "已停用")
      .then(function () { return loadKnowledgeAdmin(true); }).catch(function () {});
  }
  function clearFolded() {
    $("ka-clear").disabled = true;
    act(api("POST", "/knowledge/clear-folded"))
      .then(function (d) {
        toast(d.cleared ? "已清除 " + d.cleared + " 条已并入文件的修改" : "没有需要清除的修改（与文件一致的修改已被清除或又被修改）");
        return loadKnowledgeAdmin(true);
      })
      .catch(function () {})
      .then(function () { $("ka-clear").disabled = false; });
  }
  function restoreEntry() {
    if (!kadmin.shown) return;
    act(api("POST", "/knowledge/entries/" + encodeURIComponent(kadmin.shown) + "/restore"), "已恢复为文件版本")
      .then(function () { return loadKnowledgeAdmin(true); })
      .catch(function (e) { $("ka-problem").textContent = e.message; });
  }
  function show(view) {
    document.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t.getAttribute("data-view") === view); });
    $("desk").hidden = view !== "desk";
    $("super").hidden = view !== "super";
    $("lookup").hidden = view !== "lookup";
    $("knowledge").hidden = view !== "knowledge";
    if (view === "super") { loadDepartments.at = 0; loadSupervisor(); }  // opened: the report afresh too
    if (view === "knowledge") loadKnowledgeAdmin(false);
    if (view === "lookup") fillLookupFilters();
  }

  // --- wiring ------------------------------------------------------------------------------------
  function wire() {
    $("status-filter").addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-status]");
      if (!b) return;
      state.filter.status = b.getAttribute("data-status");
      document.querySelectorAll("#status-filter .chip").forEach(function (c) { c.classList.toggle("active", c === b); });
      renderQueue();
    });
    $("f-channel").addEventListener("change", function () { state.filter.channel = this.value; renderQueue(); });
    $("f-assignee").addEventListener("change", function () { state.filter.assignee = this.value; renderQueue(); });
    $("btn-takeover").addEventListener("click", takeover);
    $("btn-handback").addEventListener("click", handback);
    $("btn-close").addEventListener("click", closeConv);
    $("btn-transfer").addEventListener("click", transfer);
    $("btn-send").addEventListener("click", send);
    $("note-mode").addEventListener("change", updateComposer);
    $("btn-save-form").addEventListener("click", saveForm);
    $("btn-file").addEventListener("click", fileTicket);
    $("btn-kb").addEventListener("click", function () { toggleKnowledge(); });
    $("kb-q").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); searchKnowledge(); }
      else if (ev.key === "Escape") { ev.preventDefault(); toggleKnowledge(false); $("reply-text").focus(); }
    });
    $("canned").addEventListener("change", function () {
      if (this.value !== "") insertCanned(parseInt(this.value, 10));
      this.selectedIndex = 0;
    });
    $("reply-text").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); send(); }
    });
    $("logout").addEventListener("click", function () {
      api("POST", "/logout").then(function () { window.location.href = "/console/"; }).catch(function () {});
    });
    document.querySelectorAll(".tab").forEach(function (t) {
      t.addEventListener("click", function () { show(t.getAttribute("data-view")); });
    });
    $("help-btn").addEventListener("click", function () { $("help").showModal(); });
    C.alertsButton($("alerts-btn"), "待接入提醒");
    $("btn-audit-refresh").addEventListener("click", loadSupervisor);
    $("btn-dead-refresh").addEventListener("click", loadDead);
    $("s-dept-days").addEventListener("change", loadDepartments);
    $("btn-dept-refresh").addEventListener("click", loadDepartments);
    $("s-score-head").addEventListener("click", sortDepartments);
    $("s-score-head").addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortDepartments(); }
    });
    $("s-hot-days").addEventListener("change", loadHotspots);
    $("s-report-month").addEventListener("input", pickedReport);
    $("s-report-week").addEventListener("input", pickedReport);
    $("lookup-form").addEventListener("submit", function (ev) { ev.preventDefault(); searchTickets(false); });
    $("lq-department").addEventListener("focus", function () { loadRouting().catch(function () {}); });
    $("lq-category").addEventListener("focus", function () { loadRouting().catch(function () {}); });
    $("lq-more").addEventListener("click", function () { searchTickets(true); });
    $("lq-export").addEventListener("click", exportTickets);
    $("card-overdue").addEventListener("click", function () { lookupBy({ overdue: true }); });  // 超期未办结
    $("ka-q").addEventListener("input", renderKnowledgeAdmin);
    $("ka-origin").addEventListener("change", renderKnowledgeAdmin);
    $("ka-new").addEventListener("click", newEntry);
    $("ka-export").addEventListener("click", function () { window.location.href = "/api/console/knowledge.yml"; });
    $("ka-clear").addEventListener("click", clearFolded);
    $("ka-edit").addEventListener("submit", function (ev) { ev.preventDefault(); });
    $("ka-save").addEventListener("click", saveEntry);
    $("ka-remove").addEventListener("click", removeEntry);
    $("ka-restore").addEventListener("click", restoreEntry);
    $("card-due-soon").addEventListener("click", function () { lookupBy({ dueSoon: true }); });  // 即将超期
    $("card-urged").addEventListener("click", function () { lookupBy({ urged: true }); });  // 催办未办结
    $("card-returned").addEventListener("click", function () { lookupBy({ status: "returned" }); });  // 退回待改派
    $("card-repeated").addEventListener("click", function () { lookupBy({ repeated: true }); });  // 疑似重复
    $("card-redo").addEventListener("click", function () { lookupBy({ solved: "redo" }); });  // 回访未解决: to reopen
    $("card-unanswered").addEventListener("click", function () { lookupBy({ unanswered: true }); });  // 超时未签收
    $("card-extension-pending").addEventListener("click", function () { lookupBy({ extensionPending: true }); });  // 延期待审核
    $("returned-badge").addEventListener("click", function () { lookupBy({ status: "returned" }); });
    $("btn-save-canned").addEventListener("click", function () {
      var items = $("canned-edit").value.split("\n").map(function (x) { return x.trim(); }).filter(Boolean);
      act(api("PUT", "/canned", { items: items }), "常用语已保存").then(loadCanned);
    });
    $("u-role").addEventListener("change", function () {  // a department account names its unit (offered as tickets name them)
      $("u-unit").hidden = $("u-role").value !== "department";
      if (!$("u-unit").hidden) loadRouting().catch(function () {});
    });
    $("user-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      act(api("POST", "/users", { name: $("u-name").value.trim(), display_name: $("u-display").value.trim(), role: $("u-role").value,
                                  unit: $("u-role").value === "department" ? $("u-unit").value.trim() : "" }))
        .then(function (d) {
          $("u-result").textContent = "已创建 " + d.user.name + "，初始密码（仅显示一次）：" + d.password;
          $("u-name").value = ""; $("u-display").value = ""; $("u-unit").value = "";
          loadUsers(); loadSupervisor();
        });
    });
    document.addEventListener("keydown", function (ev) {
      var typing = /^(INPUT|TEXTAREA|SELECT)$/.test((ev.target && ev.target.tagName) || "");
      if (ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        var k = ev.key.toLowerCase(), code = ev.code || "";
        var handled = true;
        if (code === "KeyT" || k === "t") takeover();
        else if (code === "KeyB" || k === "b") handback();
        else if (code === "KeyE" || k === "e") closeConv();
        else if (code === "KeyJ" || k === "j") move(1);
        else if (code === "KeyK" || k === "k") move(-1);
        else if (code === "KeyF" || k === "f") fileTicket();
        else if (code === "KeyQ" || k === "q") toggleKnowledge();
        else if (code === "KeyS" || k === "s") { show("lookup"); $("lq").focus(); $("lq").select(); }
        else if (code === "KeyN" || k === "n") { $("note-mode").checked = !$("note-mode").checked; updateComposer(); $("reply-text").focus(); }
        else if (/^Digit[1-9]$/.test(code)) insertCanned(parseInt(code.slice(5), 10) - 1);
        else handled = false;
        if (handled) ev.preventDefault();
        return;
      }
      if (!typing && ev.key === "?") { ev.preventDefault(); $("help").showModal(); }
    });
    setInterval(tickWaits, 1000);
  }

  api("GET", "/me").then(function (d) {
    state.me = d.user;
    C.setCsrf(d.csrf);
    C.offer($("extend-reasons"), C.EXTEND_REASONS);
    if (d.user.role === "department") { window.location.href = "/console/"; return; }  // the unit's own page
    $("me").textContent = d.user.display_name + "（" + roleName(d.user) + "）";
    $("tab-super").hidden = d.user.role !== "supervisor";
    document.body.setAttribute("data-role", d.user.role);
    setDueSoon(d.due_soon_hours || 0);
    wire();
    loadCanned();
    loadUsers();
    return loadQueue();
  }).then(connect).catch(function (e) { toast(e.message, true); });
})();
