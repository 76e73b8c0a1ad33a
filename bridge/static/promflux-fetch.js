/* promflux-fetch.js: browser-side API timing for promflux. No dependencies, no build.
 *
 *   <script src="/metrics/promflux-fetch.js"></script>
 *   <script>promflux.install({routes: ["/api/devices", "/api/devices/{device_id}"]});</script>
 *
 * Wraps window.fetch: every call's duration (until the response headers arrive), method,
 * status (0 for a network error) and route template are batched and posted to the
 * service's exporter (default "/metrics/client-timings") every few seconds and when the
 * page is hidden. URLs are reduced to the given route templates in the browser; anything
 * else is sent as "<unmatched>", so query strings and ids never leave the page. Only
 * same-origin calls are timed.
 */
(function (global) {
  "use strict";
  var UNMATCHED = "<unmatched>";

  function compile(template) {
    var pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
    return { template: template, regex: new RegExp("^" + pattern + "$") };
  }

  function install(options) {
    options = options || {};
    if (global.fetch && global.fetch.promflux) return global.fetch.promflux;
    var endpoint = options.endpoint || "/metrics/client-timings";
    var flushMs = options.flushMs || 5000;
    var maxBatch = options.maxBatch || 100;
    var routes = (options.routes || []).map(compile);
    var original = global.fetch.bind(global);
    var queue = [];

    function routeOf(path) {
      for (var i = 0; i < routes.length; i++) {
        if (routes[i].regex.test(path)) return routes[i].template;
      }
      return UNMATCHED;
    }

    function record(url, method, status, started) {
      var parsed;
      try { parsed = new URL(url, global.location.href); } catch (e) { return; }
      if (parsed.origin !== global.location.origin || parsed.pathname === endpoint) return;
      queue.push({ route: routeOf(parsed.pathname), method: method, status: status,
                   duration_ms: Math.round((global.performance.now() - started) * 1000) / 1000 });
      if (queue.length >= maxBatch) flush();
    }

    function flush(beacon) {
      if (!queue.length) return;
      var body = JSON.stringify({ timings: queue.splice(0, maxBatch) });
      if (beacon && global.navigator.sendBeacon) {
        global.navigator.sendBeacon(endpoint, new Blob([body], { type: "application/json" }));
      } else {
        original(endpoint, { method: "POST", body: body, keepalive: true,
                             headers: { "Content-Type": "application/json" } })
          .catch(function () { /* timings are best effort */ });
      }
      if (queue.length) flush(beacon);
    }

    function timedFetch(input, init) {
      var url = typeof input === "string" ? input : (input && input.url) || String(input);
      var method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
      var started = global.performance.now();
      return original(input, init).then(function (response) {
        record(url, method, response.status, started);
        return response;
      }, function (error) {
        record(url, method, 0, started);
        throw error;
      });
    }

    var handle = { flush: flush, pending: function () { return queue.length; } };
    timedFetch.promflux = handle;
    global.fetch = timedFetch;
    global.setInterval(flush, flushMs);
    global.addEventListener("pagehide", function () { flush(true); });
    return handle;
  }

  global.promflux = { install: install, UNMATCHED: UNMATCHED };
})(window);
