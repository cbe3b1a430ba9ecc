/* What both console pages use (index.html, the centre's; unit.html, a department's): building the
 * page from text (never HTML), the console API with the session's CSRF token, a toast, calendar
 * days, rates, and a ticket's files as thumbnails. Plain JS, no build step. */
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
        img.src = base + n;
        img.addEventListener("error", function () { link.textContent = "［附件" + (n + 1) + "（非图片，或已过期）］"; });
        link.appendChild(img);
        row.appendChild(link);
      })(el("a", "attachment"), i);
    }
    return row;
  }
  return { $: $, el: el, pad2: pad2, dayOf: dayOf, percent: percent, toast: toast, api: api, ticketFiles: ticketFiles,
           setCsrf: function (token) { csrf = token; } };
})();
