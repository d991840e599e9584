/* Console login: posts the key pair as JSON; the server answers with an HttpOnly session cookie. */
(function () {
  "use strict";
  var form = document.getElementById("login-form");
  var result = document.getElementById("login-result");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    result.textContent = "checking...";
    fetch("/console/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      cache: "no-store",
      credentials: "same-origin",
      body: JSON.stringify({
        access_key: document.getElementById("login-ak").value,
        secret_key: document.getElementById("login-sk").value
      })
    }).then(function (resp) {
      if (resp.ok) {
        window.location.assign("/console");
        return null;
      }
      return resp.json().then(function (data) {
        result.textContent = (data && data.message) || ("refused (" + resp.status + ")");
      }, function () { result.textContent = "refused (" + resp.status + ")"; });
    }, function (err) {
      result.textContent = "network error: " + String(err);
    });
  });
}());
