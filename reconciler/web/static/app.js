// Driftless status page: keeps the page current and sends the actions with the API token.
// Plain JavaScript, no framework, nothing loaded from elsewhere. Without it the page still works:
// a <noscript> refresh and plain form posts.
"use strict";
(function () {
  const KEY = "driftless-reconciler-token";
  const body = document.body;
  const refresh = Math.max(1, Number(body.dataset.refresh || 5)) * 1000;
  let busy = false;

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function age(seconds) {
    seconds = Math.abs(seconds);
    if (seconds < 60) return Math.round(seconds) + "s";
    let m = Math.floor(seconds / 60);
    if (m < 60) return m + "m";
    let h = Math.floor(m / 60); m = m % 60;
    if (h < 24) return m ? h + "h " + m + "m" : h + "h";
    const d = Math.floor(h / 24); h = h % 24;
    return h ? d + "d " + h + "h" : d + "d";
  }
  function tickTimes() {
    const now = Date.now();
    document.querySelectorAll("time[data-rel]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      const delta = (now - at) / 1000;
      el.textContent = Math.abs(delta) < 1 ? "just now" : delta > 0 ? age(delta) + " ago" : "in " + age(delta);
    });
  }

  function token() { try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function saveToken(value) { try { localStorage.setItem(KEY, value); } catch (e) { /* private mode */ } }
  function forgetToken() { try { localStorage.removeItem(KEY); } catch (e) { /* ignore */ } }
  function showTokenState() {
    const field = document.getElementById("token-field");
    const forget = document.getElementById("forget-token");
    if (!field) return;
    const have = !!token();
    field.hidden = have;
    if (forget) forget.hidden = !have;
  }
  function say(text, ok) {
    const el = document.getElementById("action-result");
    if (!el) return;
    el.textContent = text;
    el.className = "small " + (ok ? "ok" : "bad");
  }

  function applyContent(fresh) {
    const current = document.getElementById("content");
    if (!current || !fresh) return;
    current.replaceWith(fresh);
    if (fresh.dataset.title) document.title = fresh.dataset.title;
    const icon = document.getElementById("favicon");
    if (icon && fresh.dataset.tone) icon.setAttribute("href", "static/icon-" + fresh.dataset.tone + ".svg");
    const pr = document.getElementById("pause-resume");
    if (pr) {
      const paused = fresh.dataset.paused === "true";
      const api = paused ? "api/resume" : "api/pause";
      pr.textContent = paused ? "Resume" : "Pause";
      pr.setAttribute("formaction", api);
      pr.dataset.api = api;
      if (paused) delete pr.dataset.confirm;
      else pr.dataset.confirm = "Pause applying? Passes keep fetching and reporting.";
    }
    tickTimes();
  }

  async function reload() {
    if (busy) return;
    busy = true;
    const conn = document.getElementById("conn");
    try {
      const res = await fetch("?part=content", { cache: "no-store", headers: { "Accept": "text/html" } });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const tpl = document.createElement("template");
      tpl.innerHTML = (await res.text()).trim();
      applyContent(tpl.content.firstElementChild);
      const updated = document.getElementById("updated");
      if (updated) {
        const d = new Date();
        updated.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      }
      if (conn) { conn.textContent = ""; conn.className = "conn"; }
    } catch (err) {
      if (conn) { conn.textContent = "agent unreachable (" + err.message + "), retrying"; conn.className = "conn lost"; }
    } finally {
      busy = false;
    }
  }

  async function act(form, button) {
    const input = document.getElementById("token");
    let secret = token();
    if (!secret && input) secret = input.value.trim();
    if (!secret) {
      say("enter the API token first", false);
      if (input) input.focus();
      return;
    }
    const confirmText = (button && button.dataset.confirm) || form.dataset.confirm;
    if (confirmText && !window.confirm(confirmText)) return;
    const api = (button && button.dataset.api) || form.dataset.api;
    if (button) button.disabled = true;
    try {
      // The token goes in the form body, not in an Authorization header: behind nginx that
      // header carries the basic auth credentials the browser sends for the page. The form's
      // own fields go with it (the revision "Sync anyway" lets through).
      const fields = new URLSearchParams(new FormData(form));
      fields.set("token", secret);
      const res = await fetch(api, {
        method: "POST",
        headers: { "Accept": "application/json" },
        body: fields,
        cache: "no-store",
      });
      let data = {};
      try { data = await res.json(); } catch (e) { /* empty body */ }
      if (res.status === 401) {
        forgetToken();
        showTokenState();
        say("token rejected", false);
        return;
      }
      if (!res.ok) { say(data.error || "HTTP " + res.status, false); return; }
      if (input && input.value) { saveToken(secret); input.value = ""; }
      showTokenState();
      say(data.message || "done", true);
      await reload();
    } catch (err) {
      say("request failed: " + err.message, false);
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    const button = event.submitter || form.querySelector("button[type=submit]");
    act(form, button);
  });
  const forget = document.getElementById("forget-token");
  if (forget) forget.addEventListener("click", function () { forgetToken(); showTokenState(); say("token forgotten", true); });

  showTokenState();
  tickTimes();
  setInterval(tickTimes, 1000);
  setInterval(reload, refresh);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) reload(); });
})();
