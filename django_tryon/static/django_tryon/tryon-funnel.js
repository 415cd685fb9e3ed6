/* django-tryon: funnel analytics (docs/analytics.rst). Counts what only the browser sees and reports it
 * in batches to the endpoint named by this script tag's data-tryon-funnel attribute.
 *
 * Listens on document for the widget's events (tryon:open, tryon:result / tryon:succeeded, tryon:download,
 * tryon:share, tryon:add-to-cart); counts each "Try it on"
 * button once per tab session, product and day (sessionStorage). Batches go out with navigator.sendBeacon
 * (fetch keepalive as a fallback) a moment after the first event, and when the page is hidden or left.
 * No personal data is sent: step names, product ids, and the id of the shopper's own succeeded try-on
 * (the server checks it belongs to this browser's session).
 */
(function () {
  "use strict";

  const script = document.currentScript;
  const endpoint = script && script.dataset.tryonFunnel;
  if (!endpoint || window.djangoTryonFunnel) return;

  const DELAY_MS = 2000;
  const MAX_BATCH = 50; // the server's FUNNEL_MAX_EVENTS default
  const queue = [];
  const sentThisPage = new Set();
  let timer = 0;
  let lastResult = null; // {product, job}: the result that download, share and add-to-cart belong to

  function day() {
    const now = new Date();
    return now.getFullYear() + "-" + (now.getMonth() + 1) + "-" + now.getDate();
  }

  /** True the first time `key` comes up in this tab session today (or on this page without sessionStorage). */
  function firstTime(key) {
    const full = "django-tryon-funnel:" + day() + ":" + key;
    if (sentThisPage.has(full)) return false;
    sentThisPage.add(full);
    try {
      if (window.sessionStorage.getItem(full)) return false;
      window.sessionStorage.setItem(full, "1");
    } catch (error) {
      // storage refused (private mode, quota): this page's memory has to do
    }
    return true;
  }

  function csrfToken() {
    const input = document.querySelector("dialog[data-tryon-api] input[name=csrfmiddlewaretoken]");
    const cookie = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return input && input.value ? input.value : cookie ? decodeURIComponent(cookie[1]) : "";
  }

  function add(step, product, job, onceKey) {
    if (product == null || product === "") return;
    if (!firstTime(onceKey || step + ":" + product)) return;
    const event = { step: step, product: String(product) };
    if (job) event.job = String(job);
    queue.push(event);
    if (queue.length >= MAX_BATCH) send();
    else if (!timer) timer = window.setTimeout(send, DELAY_MS);
  }

  function send() {
    window.clearTimeout(timer);
    timer = 0;
    while (queue.length) {
      const token = csrfToken();
      const body = new URLSearchParams({ csrfmiddlewaretoken: token, events: JSON.stringify(queue.splice(0, MAX_BATCH)) });
      let queued = false;
      try {
        queued = !!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body));
      } catch (error) {
        queued = false;
      }
      if (!queued && window.fetch) {
        window.fetch(endpoint, {
          method: "POST", body: body, keepalive: true, credentials: "same-origin", headers: { "X-CSRFToken": token },
        }).catch(() => {});
      }
    }
  }

  /** The product of a widget event: detail.product, the job's product, or the button it came from. */
  function productOf(event) {
    const detail = event.detail || {};
    if (detail.product != null && detail.product !== "") return detail.product;
    if (detail.job && detail.job.product != null) return detail.job.product;
    const button = event.target && event.target.closest && event.target.closest("[data-tryon-product]");
    return button ? button.dataset.tryonProduct : null;
  }

  function jobId(event) {
    const detail = event.detail || {};
    return detail.job && detail.job.id ? detail.job.id : "";
  }

  /** Every "Try it on" button on the page: shown (once per tab session, product and day). */
  function scan(root) {
    (root || document).querySelectorAll("[data-tryon-open][data-tryon-product]").forEach((button) => {
      add("shown", button.dataset.tryonProduct);
    });
  }

  document.addEventListener("tryon:open", (event) => add("opened", productOf(event)));

  function onResult(event) {
    const job = jobId(event);
    const product = productOf(event);
    if (!job || product == null) return;
    lastResult = { product: product, job: job };
    add("result", product, job, "result:" + job);
  }
  document.addEventListener("tryon:result", onResult);
  document.addEventListener("tryon:succeeded", onResult);

  function kept(step, event) {
    const job = jobId(event) || (lastResult && lastResult.job) || "";
    const product = productOf(event) || (lastResult && lastResult.product);
    add(step, product, "", step + ":" + (job || product)); // once per try-on on this page
  }
  document.addEventListener("tryon:download", (event) => kept("download", event));
  document.addEventListener("tryon:share", (event) => kept("share", event));
  document.addEventListener("tryon:add-to-cart", (event) => kept("add-to-cart", event));

  window.addEventListener("pagehide", send);
  document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && send());
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => scan());
  else scan();

  window.djangoTryonFunnel = { scan: scan, send: send, add: add };
})();
