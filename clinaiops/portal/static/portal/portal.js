/* ClinAIOps portal behaviour. Loaded from our own origin only: the Content-Security-Policy allows no inline
   script or event-handler attributes, so pages mark elements with data-* attributes and this file acts on them. */
(function () {
  "use strict";

  /* <select data-autosubmit> submits its form when changed (a <noscript> button covers browsers without JS). */
  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) { select.form.submit(); }
      });
    });
  }

  /* The idle warning. The server ends a session after SESSION_IDLE_MINUTES without a request (and after
     SESSION_ABSOLUTE_HOURS in any case); this only warns before that happens and offers to stay signed in.
     It asks the server how long is left rather than trusting its own clock, so activity in another tab counts,
     and its questions carry X-Session-Probe, which the server does not count as activity. */
  function idleWarning() {
    var body = document.body;
    var url = body.getAttribute("data-session-url");
    var banner = document.getElementById("session-warning");
    if (!url || !banner || !window.fetch) { return; }
    var loginUrl = body.getAttribute("data-login-url");
    var countdown = banner.querySelector("[data-session-countdown]");
    var stay = banner.querySelector("[data-session-stay]");
    var checkTimer = null;
    var tickTimer = null;
    var deadline = 0;
    var asking = false;
    var ended = false;

    function csrfToken() {
      var input = document.querySelector("input[name=csrfmiddlewaretoken]");
      return input ? input.value : "";
    }

    function signedOut() {
      /* Once: a second navigation would replace the sign-in page that carries the "signed out" message. */
      if (ended) { return; }
      ended = true;
      var next = window.location.pathname + window.location.search;
      window.location.assign(loginUrl + "?next=" + encodeURIComponent(next));
    }

    function format(seconds) {
      var minutes = Math.floor(seconds / 60);
      var rest = seconds % 60;
      return minutes + ":" + (rest < 10 ? "0" : "") + rest;
    }

    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      countdown.textContent = format(left);
      if (left <= 0) {
        window.clearInterval(tickTimer);
        tickTimer = null;
        if (checkTimer) { window.clearTimeout(checkTimer); checkTimer = null; }
        check();
      }
    }

    function show(secondsLeft) {
      deadline = Date.now() + secondsLeft * 1000;
      banner.hidden = false;
      tick();
      if (!tickTimer) { tickTimer = window.setInterval(tick, 1000); }
    }

    function hide() {
      banner.hidden = true;
      if (tickTimer) { window.clearInterval(tickTimer); tickTimer = null; }
    }

    function schedule(seconds) {
      if (checkTimer) { window.clearTimeout(checkTimer); }
      checkTimer = window.setTimeout(check, Math.max(1, seconds) * 1000);
    }

    function answer(response) {
      if (response.status === 401) { return { seconds_left: 0 }; }
      if (!response.ok) { throw new Error("session status " + response.status); }
      return response.json();
    }

    function handle(data) {
      var left = data.seconds_left;
      var warning = data.warning_seconds || 120;
      if (left <= 0) { signedOut(); return; }
      if (left <= warning) {
        show(left);
        schedule(left);
      } else {
        hide();
        schedule(left - warning);
      }
    }

    function check() {
      /* One question at a time: two answers could both end the session and race each other to the sign-in page. */
      if (asking || ended) { return; }
      asking = true;
      window.fetch(url, { credentials: "same-origin", headers: { "X-Session-Probe": "1", "Accept": "application/json" } })
        .then(answer).then(function (data) { asking = false; handle(data); })
        .catch(function () { asking = false; schedule(30); });  /* offline for a moment: ask again soon */
    }

    stay.addEventListener("click", function () {
      if (ended) { return; }
      window.fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
      }).then(answer).then(handle).catch(function () { schedule(30); });
    });

    check();
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit();
    idleWarning();
  });
}());
