/* promflux-fetch.js: the script-tag build of the promflux-browser package (browser/),
 * generated from browser/core.js by browser/build_script.py; edit core.js, not this file.
 *
 *   <script src="/metrics/promflux-fetch.js"></script>
 *   <script>promflux.install({routes: ["/api/devices/{device_id}"]});</script>
 */
(function () {
  "use strict";
  // promflux browser timing: every fetch and XMLHttpRequest call (axios included) of the
  // page, by route template, batched to a service's promflux exporter. No dependencies.
  //
  //   import { install } from "promflux-browser";
  //   install({ routes: ["/api/devices/{device_id}"],
  //             endpoint: "https://api.example/metrics/client-timings" });
  //
  // A call is timed when its URL is on the page's own origin, the endpoint's origin, or one
  // of `origins`. Its duration runs until the response headers arrive (fetch) or the request
  // ends (XMLHttpRequest); its status is 0 for a network error. URLs are reduced in the page
  // to the given route templates, anything else is sent as "<unmatched>", so ids and query
  // strings never leave the page. Batches go out every `flushMs` (5 s) and when the page is
  // hidden (navigator.sendBeacon). A cross-origin endpoint must list the page's origin in
  // the exporter's `browser_origins`.

  const UNMATCHED = "<unmatched>";
  const MAX_ROUTES = 500; // the exporter bounds the series it creates as well
  const root = typeof window !== "undefined" ? window : globalThis;

  function compile(template) {
    const pattern = String(template)
      .replace(/[.*+?^$()|[\]\\]/g, "\\$&")
      .replace(/\{[^}]+\}/g, "[^/]+");
    return { template: String(template), regex: new RegExp("^" + pattern + "$") };
  }

  function install(options = {}) {
    if (root.__promflux) return root.__promflux; // once per page, whoever calls it
    const endpoint = new URL(options.endpoint || "/metrics/client-timings", root.location.href);
    const origins = new Set([root.location.origin, endpoint.origin, ...(options.origins || [])]);
    const flushMs = options.flushMs || 5000;
    const maxBatch = options.maxBatch || 100;
    const routes = (options.routes || []).slice(0, MAX_ROUTES).map(compile);
    const originalFetch = root.fetch ? root.fetch.bind(root) : null;
    const sameOrigin = endpoint.origin === root.location.origin;
    const queue = [];

    function routeOf(path) {
      for (const route of routes) {
        if (route.regex.test(path)) return route.template;
      }
      return UNMATCHED;
    }

    function record(url, method, status, started) {
      let parsed;
      try {
        parsed = new URL(url, root.location.href);
      } catch (e) {
        return;
      }
      if (!origins.has(parsed.origin)) return;
      if (parsed.origin === endpoint.origin && parsed.pathname === endpoint.pathname) return;
      queue.push({
        route: routeOf(parsed.pathname),
        method: String(method || "GET").toUpperCase(),
        status: status,
        duration_ms: Math.round((root.performance.now() - started) * 1000) / 1000,
      });
      if (queue.length >= maxBatch) flush(false);
    }

    function flush(beacon) {
      while (queue.length) {
        const body = JSON.stringify({ timings: queue.splice(0, maxBatch) });
        if (beacon && root.navigator.sendBeacon) {
          // A beacon cannot ask a preflight: text/plain is what another origin takes.
          const type = sameOrigin ? "application/json" : "text/plain";
          root.navigator.sendBeacon(endpoint.href, new Blob([body], { type }));
        } else if (originalFetch) {
          originalFetch(endpoint.href, {
            method: "POST", body, keepalive: true, mode: sameOrigin ? "same-origin" : "cors",
            headers: { "Content-Type": "application/json" },
          }).catch(() => {}); // timings are best effort
        }
      }
    }

    if (originalFetch) {
      const timedFetch = function (input, init) {
        const url = typeof input === "string" ? input : (input && input.url) || String(input);
        const method = (init && init.method) || (input && input.method) || "GET";
        const started = root.performance.now();
        return originalFetch(input, init).then(
          (response) => {
            record(url, method, response.status, started);
            return response;
          },
          (error) => {
            record(url, method, 0, started);
            throw error;
          },
        );
      };
      root.fetch = timedFetch;
    }

    const XHR = root.XMLHttpRequest;
    if (XHR) {
      const open = XHR.prototype.open;
      const send = XHR.prototype.send;
      XHR.prototype.open = function (method, url) {
        this.__promflux = { method, url: String(url) };
        return open.apply(this, arguments);
      };
      XHR.prototype.send = function () {
        const call = this.__promflux;
        if (call && !call.listening) {
          call.listening = true;
          this.addEventListener("loadend", () => record(call.url, call.method, this.status,
                                                        call.started));
        }
        if (call) call.started = root.performance.now();
        return send.apply(this, arguments);
      };
    }

    const timer = root.setInterval(() => flush(false), flushMs);
    const hidden = () => flush(true);
    root.addEventListener("pagehide", hidden);
    root.document && root.document.addEventListener("visibilitychange", () => {
      if (root.document.visibilityState === "hidden") flush(true);
    });
    const handle = {
      flush: () => flush(false),
      pending: () => queue.length,
      stop: () => root.clearInterval(timer),
    };
    root.__promflux = handle;
    if (root.fetch) root.fetch.promflux = handle; // the script-tag build's old way to reach it
    return handle;
  }

  window.promflux = { install: install, UNMATCHED: UNMATCHED };
})();
