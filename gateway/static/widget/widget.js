/*!
 * hotline-gateway 网页在线咨询组件 (12345 web chat widget)
 *
 * Embed with ONE tag:
 *   <script src="https://host/static/widget/widget.js" defer></script>
 * Optional attributes on that tag:
 *   data-title="12345 在线咨询"   panel title
 *   data-api="https://host"      API base URL (default: derived from this script's src)
 *   data-open="true"             open the panel right away
 *
 * Plain ES2017, no build step, no dependencies. All server and citizen text is
 * inserted with textContent / createTextNode, never as HTML.
 *
 * Citizens can also send a photo (shrunk in the browser, uploaded to /media, then referenced by a
 * message) and the browser's location. Photos are never kept in localStorage: only their server
 * reference is, and a restored bubble fetches the image again with the session's token.
 *
 * Public API: window.HotlineWidget = { open(), close(), send(text) }
 */
(function () {
  "use strict";

  if (window.HotlineWidget) {
    return; // loaded twice on the same page
  }

  var MAX_LEN = 2000;
  var SCRIPT_PATH_RE = /\/static\/widget\/widget\.js$/;
  var HISTORY_LIMIT = 200;
  var SEEN_LIMIT = 500;
  var WS_FAILURES_BEFORE_POLL = 3;
  var WS_MIN_HEALTHY_MS = 5000;
  var POLL_WAIT_S = 25;
  var SEND_MAX_ATTEMPTS = 6;
  var UPLOAD_MAX_ATTEMPTS = 4;
  var PHOTO_MAX_SIDE = 1600; // px; the server keeps at most 2560, a phone screen needs far less
  var PHOTO_QUALITY = 0.85;
  var PHOTO_KEEP_BYTES = 1024 * 1024; // a photo this light and no larger than PHOTO_MAX_SIDE goes up untouched
  var PHOTO_TYPES = /^image\/(jpeg|png|webp|gif)$/;

  // the menu row: [what the button says, the words it sends] (docs/bot.md, Menu)
  var MENU = [
    ["我要反映", "我要反映问题"],
    ["进度查询", "查询我的工单"],
    ["常见问题", "常见问题"],
    ["人工客服", "转人工"],
  ];
  var T = {
    title: "12345 在线咨询",
    subtitle: "政务服务便民热线",
    placeholder: "请描述您遇到的问题，例如：XX区XX路路灯不亮",
    send: "发送",
    open: "打开12345在线咨询",
    close: "关闭在线咨询窗口",
    bubble: "在线咨询",
    input: "输入您的问题",
    messages: "对话记录",
    connecting: "连接中",
    connected: "已连接",
    reconnecting: "重新连接中",
    welcome:
      "您好！这里是12345政务服务便民热线在线咨询。\n请描述您遇到的问题或诉求，尽量说明具体地点（如区、街道、小区、门牌号），我们将为您受理并跟踪办理。",
    bot: "智能客服",
    operator: "人工客服",
    me: "我",
    sending: "发送中…",
    sent: "已发送",
    failed: "发送失败",
    retry: "重试",
    sendFailed: "发送失败，请稍后重试",
    tooLong: "消息过长（最多" + MAX_LEN + "字）",
    tooFast: "发送太频繁，请稍后再试",
    badInput: "消息内容有误，请修改后重试",
    noService: "暂时无法连接服务，请稍后重试",
    ticketFiled: "工单已受理",
    ticketNo: "工单编号",
    copy: "复制",
    copied: "已复制",
    copyFailed: "复制失败，请手动选择",
    statusUpdate: function (id) {
      return "工单 " + id + " 状态更新";
    },
    survey: "满意度回访",
    quickReplies: "快捷回复",
    menu: "常用功能",
    privacy: "请勿发送身份证号、银行卡号等敏感信息",
    photo: "发送图片",
    location: "发送位置",
    photoWord: "［图片］",
    photoAlt: "您发送的图片",
    placeWord: function (place) {
      return "［位置：" + place + "］";
    },
    kindWord: { image: "图片", audio: "语音", video: "视频" },
    uploading: "图片上传中…",
    notSent: "未发送",
    photoRefused: "图片无法发送，请换一张图片",
    photoTooBig: "图片过大，请换一张较小的图片",
    photoFailed: "图片上传失败，请稍后重试",
    photoLost: "图片未发送成功，请重新选择图片",
    locating: "正在获取位置…",
    noLocation: "无法获取位置，请在输入框中描述问题地点",
    locationDenied: "无法获取位置（未获得定位权限），请在输入框中描述问题地点",
  };

  // ---------------------------------------------------------------- setup --

  function findOwnScript() {
    var s = document.currentScript;
    if (s && s.src && SCRIPT_PATH_RE.test(new URL(s.src, location.href).pathname)) {
      return s;
    }
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (all[i].src && /widget\/widget\.js(\?|#|$)/.test(all[i].src)) {
        return all[i];
      }
    }
    return s || null;
  }

  var script = findOwnScript();
  var scriptUrl = new URL(script && script.src ? script.src : "/static/widget/widget.js", location.href);
  var apiBase = (function () {
    var explicit = script && script.getAttribute("data-api");
    if (explicit) {
      return explicit.replace(/\/+$/, "");
    }
    return scriptUrl.origin + scriptUrl.pathname.replace(SCRIPT_PATH_RE, "").replace(/\/+$/, "");
  })();
  var title = (script && script.getAttribute("data-title")) || T.title;
  var storeKey = "hotline-widget:" + apiBase;

  function injectCss() {
    var href = new URL("widget.css", scriptUrl).href;
    var links = document.querySelectorAll("link[rel=stylesheet]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].href === href) {
        return;
      }
    }
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    link.setAttribute("data-hotline-widget", "");
    (document.head || document.documentElement).appendChild(link);
  }

  // -------------------------------------------------------------- helpers --

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 0x100).toString(16).slice(1);
    }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /** Character count as the server (Python len) sees it: code points, not UTF-16 units. */
  function charCount(s) {
    var n = 0;
    for (var _ of s) n++; // eslint-disable-line no-unused-vars
    return n;
  }

  function backoff(attempt) {
    var base = Math.min(30000, 1000 * Math.pow(2, attempt));
    return base / 2 + Math.random() * (base / 2);
  }

  function sleep(ms) {
    return new Promise(function (r) {
      setTimeout(r, ms);
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fmtTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) d = new Date();
    var pad = function (n) {
      return (n < 10 ? "0" : "") + n;
    };
    var now = new Date();
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return hm;
    return d.getMonth() + 1 + "月" + d.getDate() + "日 " + hm;
  }

  /** Keep a value on a history entry without saving it: JSON.stringify skips non-enumerable keys
   * (the photo's bytes, its preview URL and in-flight promises must never reach localStorage). */
  function hide(obj, key, value) {
    Object.defineProperty(obj, key, { value: value, writable: true, configurable: true, enumerable: false });
  }

  function detailOf(body) {
    if (body && typeof body.detail === "string" && body.detail) return body.detail;
    return null;
  }

  // ------------------------------------------------------------- storage --

  var store = (function () {
    var mem = {};
    function load() {
      try {
        var raw = window.localStorage.getItem(storeKey);
        return raw ? JSON.parse(raw) || {} : {};
      } catch (e) {
        return mem;
      }
    }
    var data = load();
    return {
      get: function (k) {
        return data[k];
      },
      set: function (k, v) {
        data[k] = v;
        try {
          window.localStorage.setItem(storeKey, JSON.stringify(data));
        } catch (e) {
          mem = data; // private mode / quota: keep in memory only
        }
      },
      clearSession: function () {
        data = { history: [], seen: [] };
        try {
          window.localStorage.setItem(storeKey, JSON.stringify(data));
        } catch (e) {
          mem = data;
        }
      },
    };
  })();

  var state = {
    session: store.get("session") || null, // {session_id, token}
    cursor: store.get("cursor") || "",
    // [{k:"ev", ev} | {k:"me", id, text, status, at, attachments?: [{kind, ref}], location?: {lat, lng, label}}]
    history: store.get("history") || [],
    seen: new Set(store.get("seen") || []),
    open: false,
    unread: 0,
    conn: "idle", // idle | connecting | connected | reconnecting
    mode: "ws", // ws | poll
    wsFailures: 0,
    ws: null,
    pollAbort: null,
    retryTimer: null,
    reconnectAttempt: 0,
    generation: 0, // bumped whenever the session changes; stale loops stop
    sessionPromise: null,
    outbox: [], // queue of local message entries waiting to be POSTed
    sending: false,
    media: new Map(), // photo ref -> Promise of an object URL (or null), fetched once per page
  };

  function saveHistory() {
    if (state.history.length > HISTORY_LIMIT) {
      state.history = state.history.slice(-HISTORY_LIMIT);
    }
    store.set("history", state.history);
    var seen = Array.from(state.seen);
    if (seen.length > SEEN_LIMIT) {
      seen = seen.slice(-SEEN_LIMIT);
      state.seen = new Set(seen);
    }
    store.set("seen", seen);
  }

  function setCursor(c) {
    if (c === undefined || c === null || c === "") return;
    state.cursor = String(c);
    store.set("cursor", state.cursor);
  }

  // ------------------------------------------------------------------ DOM --

  var ui = {};

  function buildUi() {
    var root = el("div", "hw-root");
    root.id = "hotline-widget-root";
    root.setAttribute("lang", "zh-CN");

    var toggle = el("button", "hw-toggle");
    toggle.id = "hotline-widget-toggle";
    toggle.type = "button";
    toggle.setAttribute("aria-label", T.open);
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", "hotline-widget-panel");
    var icon = el("span", "hw-toggle-icon");
    icon.setAttribute("aria-hidden", "true");
    toggle.appendChild(icon);
    toggle.appendChild(el("span", "hw-toggle-label", T.bubble));
    var badge = el("span", "hw-badge");
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    toggle.appendChild(badge);

    var panel = el("section", "hw-panel");
    panel.id = "hotline-widget-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-modal", "false");
    panel.setAttribute("aria-labelledby", "hotline-widget-title");
    panel.hidden = true;

    var header = el("header", "hw-header");
    var logo = el("span", "hw-logo", "12345");
    logo.setAttribute("aria-hidden", "true");
    var titles = el("div", "hw-titles");
    var h = el("h2", "hw-title", title);
    h.id = "hotline-widget-title";
    var status = el("div", "hw-status");
    status.setAttribute("role", "status");
    var dot = el("span", "hw-dot");
    dot.setAttribute("aria-hidden", "true");
    var statusText = el("span", "hw-status-text", T.subtitle);
    status.appendChild(dot);
    status.appendChild(statusText);
    titles.appendChild(h);
    titles.appendChild(status);
    var closeBtn = el("button", "hw-close");
    closeBtn.type = "button";
    closeBtn.setAttribute("aria-label", T.close);
    closeBtn.appendChild(document.createTextNode("\u00d7"));
    header.appendChild(logo);
    header.appendChild(titles);
    header.appendChild(closeBtn);

    var list = el("div", "hw-messages");
    list.id = "hotline-widget-messages";
    list.setAttribute("role", "log");
    list.setAttribute("aria-live", "polite");
    list.setAttribute("aria-label", T.messages);
    list.tabIndex = 0;

    var error = el("div", "hw-error");
    error.id = "hotline-widget-error";
    error.setAttribute("role", "alert");
    error.hidden = true;

    // the bot's menu, as the WeChat account's buttons: each sends the words the bot answers
    var menu = el("div", "hw-menu");
    menu.id = "hotline-widget-menu";
    menu.setAttribute("role", "group");
    menu.setAttribute("aria-label", T.menu);
    MENU.forEach(function (item) {
      var b = el("button", "hw-menu-btn", item[0]);
      b.type = "button";
      b.addEventListener("click", function () {
        api.send(item[1]);
      });
      menu.appendChild(b);
    });

    var form = el("form", "hw-form");
    form.setAttribute("novalidate", "");
    var input = el("textarea", "hw-input");
    input.id = "hotline-widget-input";
    input.rows = 2;
    input.placeholder = T.placeholder;
    input.setAttribute("aria-label", T.input);
    input.setAttribute("aria-describedby", "hotline-widget-counter hotline-widget-privacy");
    input.setAttribute("enterkeyhint", "send");
    var row = el("div", "hw-form-row");
    var counter = el("span", "hw-counter", "0/" + MAX_LEN);
    counter.id = "hotline-widget-counter";
    var privacy = el("span", "hw-privacy", T.privacy);
    privacy.id = "hotline-widget-privacy";
    var sendBtn = el("button", "hw-send", T.send);
    sendBtn.id = "hotline-widget-send";
    sendBtn.type = "submit";
    sendBtn.disabled = true;
    var photoBtn = toolButton("hw-photo-btn", "hotline-widget-photo", T.photo);
    var fileInput = el("input", "hw-file");
    fileInput.id = "hotline-widget-file";
    fileInput.type = "file";
    fileInput.accept = "image/*";
    fileInput.hidden = true;
    fileInput.tabIndex = -1;
    fileInput.setAttribute("aria-hidden", "true");
    var locBtn = toolButton("hw-loc-btn", "hotline-widget-location", T.location);
    locBtn.hidden = !("geolocation" in navigator); // nothing to ask for: describe the place in words
    row.appendChild(photoBtn);
    row.appendChild(fileInput);
    row.appendChild(locBtn);
    row.appendChild(privacy);
    row.appendChild(counter);
    row.appendChild(sendBtn);
    form.appendChild(input);
    form.appendChild(row);

    panel.appendChild(header);
    panel.appendChild(list);
    panel.appendChild(error);
    panel.appendChild(menu);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(toggle);
    document.body.appendChild(root);

    ui = {
      root: root,
      toggle: toggle,
      badge: badge,
      panel: panel,
      status: status,
      statusText: statusText,
      list: list,
      error: error,
      form: form,
      input: input,
      counter: counter,
      sendBtn: sendBtn,
      photoBtn: photoBtn,
      fileInput: fileInput,
      locBtn: locBtn,
      closeBtn: closeBtn,
      locals: new Map(), // client_message_id -> {entry, node}
    };

    toggle.addEventListener("click", function () {
      if (state.open) api.close();
      else api.open();
    });
    closeBtn.addEventListener("click", function () {
      api.close();
    });
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        e.preventDefault();
        api.close();
      }
    });
    input.addEventListener("input", updateCounter);
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submitInput();
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      submitInput();
    });
    photoBtn.addEventListener("click", function () {
      fileInput.click();
    });
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      fileInput.value = ""; // picking the same photo again must fire change again
      if (file) sendPhoto(file);
    });
    locBtn.addEventListener("click", sendLocation);
  }

  /** An icon-only button of the form row; the label is for screen readers and the tooltip. */
  function toolButton(cls, id, label) {
    var b = el("button", "hw-tool " + cls);
    b.id = id;
    b.type = "button";
    b.title = label;
    b.setAttribute("aria-label", label);
    return b;
  }

  function updateCounter() {
    var n = charCount(ui.input.value);
    ui.counter.textContent = n + "/" + MAX_LEN;
    var over = n > MAX_LEN;
    ui.counter.classList.toggle("hw-over", over);
    ui.input.setAttribute("aria-invalid", over ? "true" : "false");
    ui.sendBtn.disabled = ui.input.value.trim() === "" || over;
    // auto-grow up to the CSS max-height
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 160) + "px";
  }

  var errorTimer = null;
  function showError(msg) {
    ui.error.textContent = msg;
    ui.error.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(function () {
      ui.error.hidden = true;
    }, 8000);
  }

  function setConn(s) {
    state.conn = s;
    var text = { connecting: T.connecting, connected: T.connected, reconnecting: T.reconnecting }[s];
    ui.status.setAttribute("data-state", s);
    ui.statusText.textContent = text ? T.subtitle + " · " + text : T.subtitle;
  }

  function nearBottom() {
    var l = ui.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force || nearBottom()) {
      ui.list.scrollTop = ui.list.scrollHeight;
    }
  }

  function bumpUnread() {
    if (state.open) return;
    state.unread += 1;
    ui.badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
    ui.badge.hidden = false;
    ui.toggle.setAttribute("aria-label", T.open + "（" + state.unread + "条新消息）");
  }

  // ------------------------------------------------------------ rendering --

  function metaLine(who, at) {
    var m = el("div", "hw-meta");
    if (who) m.appendChild(el("span", "hw-who", who));
    var t = el("time", "hw-time", fmtTime(at));
    if (at) t.setAttribute("datetime", at);
    m.appendChild(t);
    return m;
  }

  function textBlock(text, cls) {
    var p = el("div", cls || "hw-text");
    p.appendChild(document.createTextNode(text == null ? "" : String(text)));
    return p;
  }

  /** A shared place as the citizen reads it: its label, else its coordinates (as the server's). */
  function placeText(loc) {
    if (!loc || typeof loc !== "object") return "";
    if (loc.label) return String(loc.label);
    var lat = Number(loc.lat);
    var lng = Number(loc.lng);
    if (!isFinite(lat) || !isFinite(lng)) return "";
    return lat.toFixed(5) + "," + lng.toFixed(5);
  }

  /** The bubble of a citizen's message: photos, place, words. Text-only stays one text node. */
  function bubbleOf(msg, preview) {
    var atts = Array.isArray(msg.attachments) ? msg.attachments : [];
    var place = placeText(msg.location);
    if (!atts.length && !place) return textBlock(msg.text, "hw-bubble");
    var b = el("div", "hw-bubble hw-rich");
    atts.forEach(function (a, i) {
      if (!a || typeof a !== "object") return;
      if (!a.kind || a.kind === "image") b.appendChild(photoNode(a.ref, i === 0 ? preview : null));
      else b.appendChild(el("div", "hw-attachment", "［" + (T.kindWord[a.kind] || "文件") + "］"));
    });
    if (place) b.appendChild(el("div", "hw-place", T.placeWord(place)));
    if (msg.text) b.appendChild(textBlock(msg.text));
    return b;
  }

  /** A photo in a bubble: ［图片］ until the image is there (and for good if it can't be shown). */
  function photoNode(ref, preview) {
    var box = el("div", "hw-photo");
    if (ref) box.setAttribute("data-ref", String(ref));
    var alt = el("span", "hw-photo-alt", T.photoWord);
    box.appendChild(alt);
    var src = preview ? Promise.resolve(preview) : ref ? mediaUrl(String(ref)) : Promise.resolve(null);
    src.then(function (url) {
      if (!url) return;
      var img = document.createElement("img");
      img.className = "hw-photo-img";
      img.alt = T.photoAlt;
      img.decoding = "async";
      img.onload = function () {
        var stick = nearBottom();
        if (alt.parentNode === box) box.replaceChild(img, alt);
        scrollToBottom(stick);
      };
      img.src = url; // on error the ［图片］ text simply stays
    });
    return box;
  }

  /** An uploaded photo as an object URL: an <img> can't send the bearer token, so fetch it. */
  function mediaUrl(ref) {
    if (state.media.has(ref)) return state.media.get(ref);
    var p = (async function () {
      if (!state.session) return null;
      try {
        var r = await fetch(sessionUrl("/media/" + encodeURIComponent(ref)), {
          headers: authHeaders({ Accept: "image/*" }),
          credentials: "omit",
        });
        if (!r.ok) return null;
        var blob = await r.blob();
        return /^image\//.test(blob.type) ? URL.createObjectURL(blob) : null;
      } catch (e) {
        return null;
      }
    })();
    state.media.set(ref, p);
    p.then(function (url) {
      if (!url) state.media.delete(ref); // a later render (after reconnecting) may try again
    });
    return p;
  }

  function copyText(text, btn) {
    function done(ok) {
      btn.textContent = ok ? T.copied : T.copyFailed;
      setTimeout(function () {
        btn.textContent = T.copy;
      }, 2000);
    }
    function fallback() {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "hw-offscreen";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      document.body.removeChild(ta);
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          done(true);
        },
        fallback
      );
    } else {
      fallback();
    }
  }

  function quickReplies(buttons) {
    var wrap = el("div", "hw-quick");
    wrap.setAttribute("role", "group");
    wrap.setAttribute("aria-label", T.quickReplies);
    buttons.forEach(function (b) {
      var label = typeof b === "string" ? b : b && (b.label || b.text || b.title);
      if (!label) return;
      label = String(label);
      var btn = el("button", "hw-quick-btn", label);
      btn.type = "button";
      btn.addEventListener("click", function () {
        Array.prototype.forEach.call(wrap.querySelectorAll("button"), function (x) {
          x.disabled = true;
        });
        btn.classList.add("hw-chosen");
        btn.setAttribute("aria-pressed", "true");
        api.send(label);
      });
      wrap.appendChild(btn);
    });
    return wrap;
  }

  function renderEvent(ev, live) {
    var type = typeof ev.type === "string" && ev.type ? ev.type : "reply";
    var item = el("div", "hw-item hw-" + type.replace(/[^a-z0-9_-]/gi, ""));
    item.setAttribute("data-type", type);
    if (ev.id != null) item.setAttribute("data-event-id", String(ev.id));

    if (type === "echo") {
      item.setAttribute("data-from", "citizen");
      item.classList.add("hw-mine");
      item.appendChild(bubbleOf(ev, null));
      item.appendChild(metaLine(null, ev.created_at));
    } else if (type === "ticket_filed" || type === "status_update") {
      var card = el("div", "hw-card");
      var ticketId = ev.ticket_id ? String(ev.ticket_id) : "";
      if (ticketId) item.setAttribute("data-ticket-id", ticketId);
      if (type === "ticket_filed") {
        card.appendChild(el("div", "hw-card-title", T.ticketFiled));
        if (ticketId) {
          var box = el("div", "hw-ticket");
          box.appendChild(el("span", "hw-ticket-label", T.ticketNo));
          var num = el("span", "hw-ticket-no", ticketId);
          box.appendChild(num);
          var copy = el("button", "hw-copy", T.copy);
          copy.type = "button";
          copy.setAttribute("aria-label", T.copy + T.ticketNo + " " + ticketId);
          copy.addEventListener("click", function () {
            copyText(ticketId, copy);
          });
          box.appendChild(copy);
          card.appendChild(box);
        }
      } else {
        card.appendChild(el("div", "hw-card-title", T.statusUpdate(ticketId || "")));
        var st = ev.fields && (ev.fields.status_label || ev.fields.status);
        if (st) card.appendChild(el("span", "hw-tag", st));
      }
      if (ev.text) card.appendChild(textBlock(ev.text));
      item.appendChild(metaLine(T.bot, ev.created_at));
      item.appendChild(card);
    } else {
      var who = type === "operator" ? T.operator : type === "survey" ? T.survey : T.bot;
      item.appendChild(metaLine(who, ev.created_at));
      item.appendChild(textBlock(ev.text, "hw-bubble"));
    }

    if (type !== "echo" && Array.isArray(ev.buttons) && ev.buttons.length) {
      var q = quickReplies(ev.buttons);
      if (!live) {
        // restored from history: the moment has passed, keep them visible but inert
        Array.prototype.forEach.call(q.querySelectorAll("button"), function (x) {
          x.disabled = true;
        });
      }
      item.appendChild(q);
    }
    return item;
  }

  function renderLocal(entry) {
    var item = el("div", "hw-item hw-mine");
    item.setAttribute("data-type", "echo");
    item.setAttribute("data-from", "citizen");
    item.setAttribute("data-client-message-id", entry.id);
    item.appendChild(bubbleOf(entry, entry.preview));
    var meta = metaLine(null, entry.at);
    var st = el("span", "hw-send-state");
    meta.appendChild(st);
    item.appendChild(meta);
    var rec = { entry: entry, node: item, state: st };
    ui.locals.set(entry.id, rec);
    paintLocal(rec);
    return item;
  }

  function paintLocal(rec) {
    var st = rec.state;
    var s = rec.entry.status;
    rec.node.setAttribute("data-status", s);
    while (st.firstChild) st.removeChild(st.firstChild);
    if (s === "pending") {
      st.textContent = needsUpload(rec.entry) ? T.uploading : T.sending;
    } else if (s === "sent") {
      st.textContent = T.sent;
    } else if (s === "refused") {
      // the server refused the photo itself: sending the same bytes again can't help
      st.appendChild(el("span", "hw-failed", T.notSent + "：" + (rec.entry.error || T.photoRefused)));
    } else if (s === "failed" && needsUpload(rec.entry) && !rec.entry.file) {
      st.appendChild(el("span", "hw-failed", T.photoLost)); // the page was closed before the upload
    } else if (s === "failed") {
      st.appendChild(el("span", "hw-failed", T.failed));
      var r = el("button", "hw-retry", T.retry);
      r.type = "button";
      r.setAttribute("aria-label", T.retry + "发送此消息");
      r.addEventListener("click", function () {
        rec.entry.status = "pending";
        paintLocal(rec);
        saveHistory();
        enqueue(rec.entry);
      });
      st.appendChild(r);
    } else {
      st.textContent = "";
    }
  }

  function append(node) {
    var stick = nearBottom();
    ui.list.appendChild(node);
    scrollToBottom(stick);
  }

  function renderWelcome() {
    var item = el("div", "hw-item hw-welcome");
    item.setAttribute("data-type", "welcome");
    item.appendChild(metaLine(T.bot, null));
    item.appendChild(textBlock(T.welcome, "hw-bubble"));
    ui.list.appendChild(item);
  }

  function restoreHistory() {
    renderWelcome();
    // quick replies stay usable only on the last message, if the citizen has not answered since
    var last = state.history.length ? state.history[state.history.length - 1] : null;
    var liveEv = last && last.k === "ev" && last.ev && last.ev.type !== "echo" ? last.ev : null;
    state.history.forEach(function (h) {
      if (h.k === "ev" && h.ev) {
        ui.list.appendChild(renderEvent(h.ev, h.ev === liveEv));
      } else if (h.k === "me") {
        if (h.status === "pending") h.status = "failed"; // page was closed mid-send
        ui.list.appendChild(renderLocal(h));
      }
    });
    scrollToBottom(true);
  }

  // --------------------------------------------------------------- events --

  function handleEvent(ev) {
    if (!ev || typeof ev !== "object") return;
    if (ev.id != null) {
      var key = String(ev.id);
      if (state.seen.has(key)) return;
      state.seen.add(key);
    }
    if (!ev.type && ev.text == null) return; // keep-alives and other non-messages
    if (ev.type === "echo") {
      var cmid = ev.fields && ev.fields.client_message_id;
      var rec = cmid && ui.locals.get(String(cmid));
      if (rec) {
        rec.entry.status = "delivered";
        rec.entry.event_id = ev.id;
        paintLocal(rec);
        saveHistory();
        return;
      }
    }
    state.history.push({ k: "ev", ev: ev });
    saveHistory();
    append(renderEvent(ev, true));
    if (ev.type !== "echo") bumpUnread();
  }

  function handlePayload(data) {
    if (!data || typeof data !== "object") return;
    if (Array.isArray(data)) {
      data.forEach(handlePayload);
      return;
    }
    if (Array.isArray(data.events)) {
      data.events.forEach(function (ev) {
        handleEvent(ev);
        if (ev && ev.cursor != null) setCursor(ev.cursor);
      });
      if (data.cursor != null) setCursor(data.cursor);
      else if (data.events.length && data.events[data.events.length - 1].id != null) {
        setCursor(data.events[data.events.length - 1].id);
      }
      return;
    }
    if (data.type === "ping" || data.type === "pong" || data.type === "hello") {
      if (data.cursor != null) setCursor(data.cursor);
      return;
    }
    handleEvent(data);
    if (data.cursor != null) setCursor(data.cursor);
    else if (data.id != null) setCursor(data.id);
  }

  // -------------------------------------------------------------- session --

  function authHeaders(extra) {
    var h = { Authorization: "Bearer " + state.session.token };
    if (extra) for (var k in extra) h[k] = extra[k];
    return h;
  }

  function sessionUrl(suffix) {
    return apiBase + "/channels/web/sessions/" + encodeURIComponent(state.session.session_id) + suffix;
  }

  function createSession() {
    if (state.sessionPromise) return state.sessionPromise;
    var gen = state.generation;
    state.sessionPromise = (async function () {
      var attempt = 0;
      for (;;) {
        try {
          var r = await fetch(apiBase + "/channels/web/sessions", {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "application/json" },
            body: JSON.stringify({ page: location.href.slice(0, 500), title: document.title.slice(0, 200) }),
            credentials: "omit",
          });
          if (r.ok) {
            var body = await r.json();
            if (!body || !body.session_id || !body.token) throw new Error("bad session response");
            return body;
          }
          if (r.status === 429 || r.status >= 500) throw new Error("HTTP " + r.status);
          var b = await r.json().catch(function () {
            return null;
          });
          showError(detailOf(b) || T.noService);
          throw new Error("HTTP " + r.status);
        } catch (e) {
          attempt += 1;
          if (attempt === 3) showError(T.noService);
          setConn(attempt === 1 ? "connecting" : "reconnecting");
          await sleep(backoff(Math.min(attempt, 5)));
        }
      }
    })().then(
      function (s) {
        state.sessionPromise = null;
        if (gen === state.generation) adoptSession(s);
        return state.session;
      },
      function (e) {
        state.sessionPromise = null;
        throw e;
      }
    );
    return state.sessionPromise;
  }

  function adoptSession(s) {
    stopReceiving();
    state.generation += 1;
    state.session = { session_id: String(s.session_id), token: String(s.token) };
    state.cursor = "";
    state.seen = new Set(); // event ids need only be unique within one session
    store.set("seen", []);
    state.mode = "ws";
    state.wsFailures = 0;
    state.reconnectAttempt = 0;
    store.set("session", state.session);
    store.set("cursor", "");
    startReceiving();
  }

  /** The stored session is gone on the server (401/404): start a fresh one. */
  function sessionLost() {
    if (state.sessionPromise) return state.sessionPromise;
    stopReceiving();
    state.generation += 1;
    state.session = null;
    store.set("session", null);
    store.set("cursor", "");
    state.cursor = "";
    return createSession();
  }

  function ensureSession() {
    if (state.session) return Promise.resolve(state.session);
    return createSession();
  }

  // ------------------------------------------------------------ receiving --

  function stopReceiving() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    if (state.ws) {
      var ws = state.ws;
      state.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch (e) {
        /* ignore */
      }
    }
    if (state.pollAbort) {
      state.pollAbort.abort();
      state.pollAbort = null;
    }
  }

  function startReceiving() {
    if (!state.session) return;
    if (state.ws || state.pollAbort || state.retryTimer) return;
    if (state.conn !== "reconnecting") setConn("connecting");
    if (state.mode === "ws" && "WebSocket" in window) connectWs();
    else poll();
  }

  function scheduleReconnect() {
    var gen = state.generation;
    setConn("reconnecting");
    clearTimeout(state.retryTimer);
    var delay = backoff(state.reconnectAttempt);
    state.reconnectAttempt = Math.min(state.reconnectAttempt + 1, 6);
    state.retryTimer = setTimeout(function () {
      state.retryTimer = null;
      if (gen === state.generation) startReceiving();
    }, delay);
  }

  function connectWs() {
    var gen = state.generation;
    var u = new URL(sessionUrl("/ws"));
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", state.session.token);
    if (state.cursor) u.searchParams.set("after", state.cursor);
    var ws;
    try {
      ws = new WebSocket(u.href);
    } catch (e) {
      state.mode = "poll";
      poll();
      return;
    }
    state.ws = ws;
    var openedAt = 0;
    ws.onopen = function () {
      openedAt = Date.now();
      setConn("connected");
    };
    ws.onmessage = function (m) {
      if (gen !== state.generation) return;
      var data;
      try {
        data = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (data && data.type === "error" && /auth|token|session/i.test(String(data.code || ""))) {
        sessionLost();
        return;
      }
      handlePayload(data);
      state.reconnectAttempt = 0;
    };
    ws.onerror = function () {
      /* onclose follows */
    };
    ws.onclose = function (e) {
      if (state.ws !== ws || gen !== state.generation) return;
      state.ws = null;
      if (e.code === 4401 || e.code === 4403 || e.code === 4404) {
        sessionLost();
        return;
      }
      if (!openedAt && state.wsFailures === 0) {
        // refused before it opened: a browser can't see why, so ask once over HTTP (401/404 = session gone)
        state.wsFailures = 1;
        probeSession(gen);
        return;
      }
      var healthy = openedAt && Date.now() - openedAt > WS_MIN_HEALTHY_MS;
      state.wsFailures = healthy ? 0 : state.wsFailures + 1;
      if (healthy) state.reconnectAttempt = 0;
      if (state.wsFailures >= WS_FAILURES_BEFORE_POLL) {
        state.mode = "poll"; // WebSocket keeps failing (proxy, firewall): long-poll instead
        state.reconnectAttempt = 0;
      }
      scheduleReconnect();
    };
  }

  async function probeSession(gen) {
    var lost = false;
    try {
      var r = await fetch(sessionUrl("/events"), {
        headers: authHeaders({ Accept: "application/json" }),
        cache: "no-store",
        credentials: "omit",
      });
      lost = r.status === 401 || r.status === 404;
    } catch (e) {
      lost = false;
    }
    if (gen !== state.generation) return;
    if (lost) sessionLost();
    else scheduleReconnect();
  }

  async function poll() {
    var gen = state.generation;
    var attempt = 0;
    while (gen === state.generation && state.session) {
      var ctl = new AbortController();
      state.pollAbort = ctl;
      var timer = setTimeout(function () {
        ctl.abort();
      }, (POLL_WAIT_S + 15) * 1000);
      try {
        var qs = "?wait=" + POLL_WAIT_S + (state.cursor ? "&after=" + encodeURIComponent(state.cursor) : "");
        var r = await fetch(sessionUrl("/events" + qs), {
          headers: authHeaders({ Accept: "application/json" }),
          signal: ctl.signal,
          cache: "no-store",
          credentials: "omit",
        });
        clearTimeout(timer);
        if (gen !== state.generation) return;
        if (r.status === 401 || r.status === 404) {
          state.pollAbort = null;
          sessionLost();
          return;
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        var body = await r.json();
        if (gen !== state.generation) return;
        setConn("connected");
        attempt = 0;
        handlePayload(body && Array.isArray(body.events) ? body : { events: [], cursor: body && body.cursor });
      } catch (e) {
        clearTimeout(timer);
        if (gen !== state.generation || state.pollAbort !== ctl) return; // stopped on purpose
        attempt += 1;
        setConn("reconnecting");
        await sleep(backoff(Math.min(attempt, 5)));
      }
    }
  }

  // -------------------------------------------------------------- sending --

  function enqueue(entry) {
    if (state.outbox.indexOf(entry) === -1) state.outbox.push(entry);
    pump();
  }

  async function pump() {
    if (state.sending) return;
    state.sending = true;
    try {
      while (state.outbox.length) {
        var entry = state.outbox[0];
        var rec = ui.locals.get(entry.id);
        var ok = await deliver(entry);
        state.outbox.shift();
        entry.status = ok ? (entry.status === "delivered" ? "delivered" : "sent") : entry.error ? "refused" : "failed";
        if (rec) paintLocal(rec);
        if (entry.status === "refused") forget(entry); // never sent: nothing to show after a reload
        saveHistory();
        if (entry.resolve) {
          entry.resolve(ok);
          delete entry.resolve;
        }
      }
    } finally {
      state.sending = false;
    }
  }

  /** Drop an entry from the saved history (its bubble stays on this page). */
  function forget(entry) {
    var i = state.history.indexOf(entry);
    if (i !== -1) state.history.splice(i, 1);
  }

  /** What the server gets for one message: only the photos' refs, never their bytes. */
  function payloadOf(entry) {
    var body = { text: entry.text || "", client_message_id: entry.id };
    if (entry.location) body.location = entry.location;
    if (Array.isArray(entry.attachments) && entry.attachments.length) {
      body.attachments = entry.attachments.map(function (a) {
        return { ref: a.ref };
      });
    }
    return body;
  }

  /** POST to the session's ``path`` until a final answer: network errors and 5xx are retried with
   * back-off, a lost session (401/404) is renewed once, and then ``onRenewed`` may redo what
   * belonged to the old one. Resolves {r, body} for a 2xx or 4xx, or null once it has shown why
   * nothing came (a 5xx's own words, else ``fallback``). ``init()`` gives the request each try. */
  async function postToSession(path, init, maxAttempts, fallback, onRenewed) {
    var renewed = false;
    var busy = null; // the server's own words for a 5xx (e.g. its media disk is full), shown if it lasts
    for (var attempt = 0; attempt < maxAttempts; attempt++) {
      var session;
      try {
        session = await ensureSession();
      } catch (e) {
        showError(T.noService);
        return null;
      }
      var r;
      try {
        r = await fetch(sessionUrl(path), Object.assign({ method: "POST", credentials: "omit" }, init()));
      } catch (e) {
        await sleep(backoff(attempt));
        continue; // network error: retry (messages are de-duplicated by client_message_id)
      }
      var body = await r.json().catch(function () {
        return null;
      });
      if (r.status >= 500) {
        busy = detailOf(body) || busy;
        await sleep(backoff(attempt));
        continue;
      }
      if ((r.status === 401 || r.status === 404) && !renewed && session === state.session) {
        renewed = true;
        try {
          await sessionLost();
        } catch (e) {
          showError(T.noService);
          return null;
        }
        if (onRenewed && !(await onRenewed())) return null;
        attempt -= 1;
        continue;
      }
      return { r: r, body: body };
    }
    showError(busy || fallback);
    return null;
  }

  /** POST one message (after its photo is uploaded). Returns true on 2xx. */
  async function deliver(entry) {
    if (!(await photoReady(entry))) return false;
    var answer = await postToSession(
      "/messages",
      function () {
        return {
          headers: authHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
          body: JSON.stringify(payloadOf(entry)),
        };
      },
      SEND_MAX_ATTEMPTS,
      T.sendFailed,
      function () {
        if (!(entry.file && hasPhoto(entry))) return true;
        // the new session can't reference the old one's upload: send the photo again
        entry.attachments = [{ kind: "image", ref: "" }];
        return photoReady(entry);
      }
    );
    if (!answer) return false;
    if (answer.r.ok) return true;
    var status = answer.r.status;
    var msg = detailOf(answer.body);
    if (!msg) {
      if (status === 413) msg = T.tooLong;
      else if (status === 429) msg = T.tooFast;
      else if (status === 422 || status === 400) msg = T.badInput;
      else msg = T.sendFailed;
    }
    showError(msg);
    return false;
  }

  /** Show a new message of the citizen's, save it and queue it; resolves true once POSTed. */
  function sendEntry(entry) {
    state.history.push(entry);
    saveHistory();
    append(renderLocal(entry));
    scrollToBottom(true);
    return new Promise(function (resolve) {
      hide(entry, "resolve", resolve);
      enqueue(entry);
      if (!state.ws && !state.pollAbort && !state.retryTimer) {
        ensureSession().then(startReceiving, function () {});
      }
    });
  }

  function newEntry(text) {
    return { k: "me", id: uuid(), text: text, status: "pending", at: new Date().toISOString() };
  }

  function sendText(text) {
    text = String(text == null ? "" : text);
    if (!text.trim()) return Promise.resolve(false);
    if (charCount(text) > MAX_LEN) {
      showError(T.tooLong);
      return Promise.resolve(false);
    }
    return sendEntry(newEntry(text));
  }

  // --------------------------------------------------------------- photos --

  function hasPhoto(entry) {
    return Array.isArray(entry.attachments) && entry.attachments.some(function (a) {
      return a && (!a.kind || a.kind === "image");
    });
  }

  /** A photo message whose photo is not on the server yet (its ref is still empty). */
  function needsUpload(entry) {
    return Array.isArray(entry.attachments) && entry.attachments.some(function (a) {
      return a && !a.ref;
    });
  }

  /** Show the picked photo at once and start its upload; the message waits in the queue for it
   * (so messages still reach the server in the order the citizen sees them). */
  function sendPhoto(file) {
    var entry = newEntry("");
    entry.attachments = [{ kind: "image", ref: "" }];
    hide(entry, "file", file);
    hide(entry, "preview", URL.createObjectURL(file));
    hide(entry, "error", "");
    var sent = sendEntry(entry);
    photoReady(entry); // upload right away, even while an earlier message is still being sent
    return sent;
  }

  /** Resolves true once the entry's photo is uploaded (one upload at a time per entry). */
  function photoReady(entry) {
    if (!needsUpload(entry)) return Promise.resolve(true);
    if (!entry.uploading) {
      hide(
        entry,
        "uploading",
        uploadPhoto(entry).then(function (ok) {
          entry.uploading = null;
          return ok;
        })
      );
    }
    return entry.uploading;
  }

  /** The image decoded (upright), or null when this browser can't read it. */
  async function decodeImage(file) {
    if (typeof window.createImageBitmap === "function") {
      try {
        return await window.createImageBitmap(file, { imageOrientation: "from-image" });
      } catch (e) {
        /* older engines reject the options, others the file: try an <img> */
      }
    }
    var url = URL.createObjectURL(file);
    try {
      var img = new Image();
      img.src = url;
      await img.decode();
      return img;
    } catch (e) {
      return null;
    } finally {
      setTimeout(function () {
        URL.revokeObjectURL(url);
      }, 0);
    }
  }

  /** A phone photo is often 4000 px and 5 MB: send at most PHOTO_MAX_SIDE px as JPEG instead
   * (also drops its EXIF, GPS included). Anything undecodable goes up as is: the server decides. */
  async function shrinkPhoto(file) {
    var pic = await decodeImage(file);
    if (!pic) return file;
    try {
      var w = pic.naturalWidth || pic.width;
      var h = pic.naturalHeight || pic.height;
      if (!w || !h) return file;
      var scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(w, h));
      if (scale === 1 && file.size <= PHOTO_KEEP_BYTES && PHOTO_TYPES.test(file.type)) return file;
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(w * scale));
      canvas.height = Math.max(1, Math.round(h * scale));
      var ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff"; // JPEG has no transparency: white, not black, behind a PNG's holes
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(pic, 0, 0, canvas.width, canvas.height);
      var blob = await new Promise(function (r) {
        canvas.toBlob(r, "image/jpeg", PHOTO_QUALITY);
      });
      if (!blob || !blob.size) return file;
      return scale === 1 && blob.size >= file.size && PHOTO_TYPES.test(file.type) ? file : blob;
    } catch (e) {
      return file; // a tainted or failing canvas: the server re-encodes anyway
    } finally {
      if (pic.close) pic.close();
    }
  }

  /** Why the server refused an upload, in the citizen's words. */
  function uploadError(status, body) {
    var msg = detailOf(body);
    if (msg) return msg;
    if (status === 413) return T.photoTooBig;
    if (status === 429) return T.tooFast;
    if (status === 400 || status === 415 || status === 422) return T.photoRefused;
    return T.photoFailed;
  }

  /** POST the entry's photo to /media and keep the returned ref on the entry. Network errors and
   * 5xx are retried with back-off; 400/403/413 are final (entry.error is set, no retry offered). */
  async function uploadPhoto(entry) {
    if (!entry.file) {
      showError(T.photoLost);
      return false;
    }
    if (!entry.prepared) hide(entry, "prepared", await shrinkPhoto(entry.file));
    var data = entry.prepared;
    var answer = await postToSession(
      "/media",
      function () {
        return {
          headers: authHeaders({ "Content-Type": data.type || "application/octet-stream", Accept: "application/json" }),
          body: data,
        };
      },
      UPLOAD_MAX_ATTEMPTS,
      T.photoFailed
    );
    if (!answer) return false;
    if (answer.r.ok) {
      var att = answer.body && answer.body.attachment;
      if (!att || typeof att.ref !== "string" || !att.ref) {
        showError(T.photoFailed);
        return false;
      }
      entry.attachments = [{ kind: att.kind || "image", ref: att.ref }];
      if (entry.preview) state.media.set(att.ref, Promise.resolve(entry.preview));
      var rec = ui.locals.get(entry.id);
      if (rec) {
        var box = rec.node.querySelector(".hw-photo");
        if (box) box.setAttribute("data-ref", att.ref);
        paintLocal(rec);
      }
      saveHistory();
      return true;
    }
    var msg = uploadError(answer.r.status, answer.body);
    // final: not a photo, too large, or this session's photo quota used up (403)
    if ([400, 403, 413, 415, 422].indexOf(answer.r.status) !== -1) hide(entry, "error", msg);
    showError(msg);
    return false;
  }

  // ------------------------------------------------------------- location --

  /** Ask the browser where the citizen is and send it as a message of its own (no text). */
  function sendLocation() {
    if (!("geolocation" in navigator) || ui.locBtn.disabled) return;
    ui.locBtn.disabled = true;
    ui.locBtn.setAttribute("aria-busy", "true");
    ui.locBtn.title = T.locating;
    function done() {
      ui.locBtn.disabled = false;
      ui.locBtn.removeAttribute("aria-busy");
      ui.locBtn.title = T.location;
    }
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        done();
        var round = function (x) {
          return Math.round(x * 1e6) / 1e6; // ~0.1 m: more digits are noise
        };
        var entry = newEntry("");
        entry.location = { lat: round(pos.coords.latitude), lng: round(pos.coords.longitude), label: "" };
        sendEntry(entry);
      },
      function (err) {
        done();
        showError(err && err.code === 1 ? T.locationDenied : T.noLocation);
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  function submitInput() {
    var text = ui.input.value;
    if (!text.trim()) return;
    if (charCount(text) > MAX_LEN) {
      showError(T.tooLong);
      ui.input.focus();
      return;
    }
    ui.input.value = "";
    updateCounter();
    sendText(text);
    ui.input.focus();
  }

  // ------------------------------------------------------------------ API --

  var lastFocus = null;
  var api = {
    open: function () {
      if (!ui.panel) return;
      if (!state.open) {
        lastFocus = document.activeElement;
        state.open = true;
        ui.panel.hidden = false;
        ui.root.classList.add("hw-is-open");
        ui.toggle.setAttribute("aria-expanded", "true");
        ui.toggle.setAttribute("aria-label", T.close);
        state.unread = 0;
        ui.badge.hidden = true;
        scrollToBottom(true);
      }
      ui.input.focus();
      ensureSession().then(startReceiving, function () {});
    },
    close: function () {
      if (!ui.panel || !state.open) return;
      state.open = false;
      ui.panel.hidden = true;
      ui.root.classList.remove("hw-is-open");
      ui.toggle.setAttribute("aria-expanded", "false");
      ui.toggle.setAttribute("aria-label", T.open);
      if (ui.panel.contains(document.activeElement) || document.activeElement === document.body) {
        (lastFocus && lastFocus !== document.body && document.contains(lastFocus) ? lastFocus : ui.toggle).focus();
      }
    },
    send: function (text) {
      if (!ui.panel) return Promise.resolve(false);
      return sendText(text);
    },
  };
  window.HotlineWidget = api;

  function init() {
    injectCss();
    buildUi();
    setConn("idle");
    restoreHistory();
    // failed messages from a previous page stay failed until the citizen taps 重试
    if (state.session) startReceiving(); // pick up replies that arrived while away
    if (script && script.getAttribute("data-open") === "true") api.open();

    // any element with data-hotline-widget-open (or a link to #hotline-chat) opens the panel
    document.addEventListener("click", function (e) {
      var t = e.target && e.target.closest && e.target.closest("[data-hotline-widget-open], a[href='#hotline-chat']");
      if (t && !ui.root.contains(t)) {
        e.preventDefault();
        api.open();
      }
    });
    if (location.hash === "#hotline-chat") api.open();

    window.addEventListener("online", function () {
      if (state.session && state.retryTimer) {
        clearTimeout(state.retryTimer);
        state.retryTimer = null;
        state.reconnectAttempt = 0;
        startReceiving();
      }
    });
    window.addEventListener("storage", function (e) {
      // another tab replaced the session: follow it
      if (e.key !== storeKey || !e.newValue) return;
      try {
        var d = JSON.parse(e.newValue);
        if (d && d.session && state.session && d.session.session_id !== state.session.session_id) {
          stopReceiving();
          state.generation += 1;
          state.session = d.session;
          state.cursor = d.cursor || "";
          startReceiving();
        }
      } catch (err) {
        /* ignore */
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
