"use strict";
(function () {
  var form = document.getElementById("login-form");
  var error = document.getElementById("login-error");
  var submit = document.getElementById("login-submit");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    error.textContent = "";
    var username = document.getElementById("username").value.trim();
    var password = document.getElementById("password").value;
    if (!username || !password) {
      error.textContent = "请输入用户名和密码";
      return;
    }
    submit.disabled = true;
    fetch("/api/console/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: username, password: password })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok) {
          window.location.href = "/console/";
          return;
        }
        error.textContent = body.detail || "登录失败（" + r.status + "）";
        submit.disabled = false;
      });
    }).catch(function () {
      error.textContent = "无法连接服务器，请稍后重试";
      submit.disabled = false;
    });
  });
})();
