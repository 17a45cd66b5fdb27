/* Partner hub tracking script, served by GET /track.js. Hand-written, no build step, no
   third-party requests. Include it on the merchant's pages:
     <script src="https://<hub>/track.js" defer></script>
   On a page opened with ?via=<code> (or ?ref=<code>) it records the click through the hub,
   keeps the referral in a first-party cookie, sets window.hubReferral and hands the id to
   Stripe Payment Links, <stripe-pricing-table>, <stripe-buy-button> and forms marked
   data-hub-referral. Without a referral it sets no cookie and sends nothing. */
(function () {
  "use strict";
  var CONFIG = /*hub:config*/{"params": ["via", "ref"], "click": "click_id", "cookie": "hub_ref",
                              "endpoint": "/api/v1/track/clicks"}/*hub:end*/;
  var ID = /^clk_[0-9a-f]{8,64}$/;
  var script = document.currentScript;
  var hub = script && script.src ? new URL(script.src).origin : "";

  function readCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var at = parts[i].indexOf("=");
      if (parts[i].slice(0, at) === CONFIG.cookie) {
        try { return decodeURIComponent(parts[i].slice(at + 1)); } catch (e) { return null; }
      }
    }
    return null;
  }

  function writeCookie(value, seconds) {
    // First-party on the merchant's site; SameSite=Lax keeps it on top-level navigations.
    var text = CONFIG.cookie + "=" + encodeURIComponent(value) + "; Max-Age=" + seconds +
      "; Path=/; SameSite=Lax";
    if (location.protocol === "https:") { text += "; Secure"; }
    document.cookie = text;
  }

  function idOf(value) {
    // The cookie is "<click id>.<visitor>.<signature>"; Stripe gets only the click id.
    var id = value ? String(value).split(".")[0] : "";
    return ID.test(id) ? id : null;
  }

  function fillForm(form, id) {
    var name = form.getAttribute("data-hub-referral") || "client_reference_id";
    var inputs = form.querySelectorAll("input[type=hidden]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].name === name) { inputs[i].value = id; return; }
    }
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = id;
    form.appendChild(input);
  }

  function fill(id) {
    var links = document.querySelectorAll('a[href^="https://buy.stripe.com/"], a[data-hub-referral]');
    for (var i = 0; i < links.length; i++) {
      try {
        var url = new URL(links[i].href);
        if (url.searchParams.get("client_reference_id") !== id) {
          url.searchParams.set("client_reference_id", id);
          links[i].href = url.toString();
        }
      } catch (e) { /* not a URL: leave the link alone */ }
    }
    var widgets = document.querySelectorAll("stripe-pricing-table, stripe-buy-button");
    for (var j = 0; j < widgets.length; j++) {
      if (widgets[j].getAttribute("client-reference-id") !== id) {
        widgets[j].setAttribute("client-reference-id", id);
      }
    }
    var forms = document.querySelectorAll("form[data-hub-referral]");
    for (var k = 0; k < forms.length; k++) { fillForm(forms[k], id); }
  }

  function settle(id) {
    window.hubReferral = id;
    if (!id) { return; }
    var run = function () {
      fill(id);
      // Pricing tables and buttons added later (single-page apps) get the id too.
      if (window.MutationObserver) {
        new MutationObserver(function () { fill(id); })
          .observe(document.documentElement, {childList: true, subtree: true});
      }
    };
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", run);
    } else {
      run();
    }
    try {
      document.dispatchEvent(new CustomEvent("hub:referral", {detail: {id: id}}));
    } catch (e) { /* very old browsers: window.hubReferral is enough */ }
  }

  var query = new URLSearchParams(location.search);
  var code = null;
  for (var p = 0; p < CONFIG.params.length && !code; p++) {
    code = query.get(CONFIG.params[p]);
  }
  var stored = readCookie();
  window.hubReferral = idOf(stored);
  if (!code || !hub || !window.fetch) {
    settle(idOf(stored));
    return;
  }
  fetch(hub + CONFIG.endpoint, {
    method: "POST",
    // text/plain keeps this a simple request (no preflight); the hub checks the Origin itself.
    headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({code: code, click: query.get(CONFIG.click), cookie: stored}),
    credentials: "omit",
    keepalive: true
  }).then(function (response) {
    return response.ok ? response.json() : null;
  }).then(function (data) {
    if (data && data.cookie && idOf(data.cookie)) {
      writeCookie(data.cookie, data.max_age);
      settle(idOf(data.cookie));
    } else {
      settle(idOf(stored));
    }
  }, function () {
    settle(idOf(stored));
  });
})();
