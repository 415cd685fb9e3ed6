/* django-tryon: the shopper's "Try it on" dialog. Vanilla JS, no build step (docs/widget.rst).
 *
 * Flow: check the photo in the browser -> POST photos/ (kept, with consent) -> when the server's person
 * check has warnings, show them and wait for "Use this photo anyway" (nothing is paid before) -> POST
 * tryons/ with person_photo + product -> GET tryons/<id>/ every 1.5 s until it ends. Strings come from
 * Django's JavaScript catalog (gettext); error messages from the server's own table, which the template tag
 * renders into the dialog (script#tryon-messages), so the widget and the API never say different things.
 * The result view offers "Add to cart" (the cancelable tryon:add-to-cart event, then a POST to the
 * shop's TRYON["ADD_TO_CART_URL"] when set) and "Share" (a public, expiring link to the picture only).
 * Events "tryon:<name>" bubble from the button that opened the dialog (from the dialog when it was opened
 * by window.djangoTryon.open() or the button is gone); every detail has product, garments and job
 * (docs/widget.rst, "JavaScript API").
 */
(function () {
  "use strict";

  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((fmt, values) => fmt.replace(/%\((\w+)\)s/g, (_, key) => values[key]));
  const fill = (fmt, values) => interpolate(fmt, values, true);

  // The provider's rules, enforced again by the server (django_tryon/validators.py).
  const MIN_BYTES = 5 * 1024;
  const MAX_BYTES = 5 * 1024 * 1024;
  const MIN_SIDE = 150; // each side must be larger
  const MAX_SIDE = 4096;
  const TYPES = ["image/jpeg", "image/png", "image/bmp", "image/x-ms-bmp", "image/webp"];
  const ACTIVE = ["queued", "submitting", "submitted", "running"];
  const PHOTO_ERRORS = ["InvalidPerson", "InvalidInputLength", "InvalidURL", "DataInspectionFailed"];
  const FINAL_ERRORS = PHOTO_ERRORS.concat(["InvalidGarment", "InvalidParameter", "consent_required", "not_found"]);
  const POLL_MS = 1500;
  const FOCUSABLE = "button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])";

  /** The server's message table (django_tryon/messages.py, in the page's language), rendered into the dialog. */
  function readMessages(dialog) {
    const script = dialog.querySelector("script#tryon-messages");
    try {
      return script ? JSON.parse(script.textContent) : {};
    } catch (err) {
      return {};
    }
  }

  /** The shopper's sentence for an error: the server's message for its code (a dotted provider code by its
   * family, as on the server), else what the server sent; "network" (no answer at all) is the widget's own. */
  function friendly(error, messages) {
    const code = error.code || "";
    if (code === "network") return gettext("We could not reach the shop. Check your connection and try again.");
    const generic = error.status >= 500 ? messages.service_unavailable : messages.TryOnError;
    return messages[code] || messages[code.split(".")[0]] || error.message || generic ||
      gettext("Something went wrong. Please try again.");
  }

  /** Why ``file`` would be refused, checked before any upload; "" when it is fine. */
  async function checkFile(file) {
    const type = (file.type || "").toLowerCase();
    const name = (file.name || "").toLowerCase();
    if (/hei[cf]/.test(type) || /\.hei[cf]$/.test(name)) {
      return gettext("HEIC photos (the iPhone default) cannot be used. Please choose a JPEG or PNG photo, or set the camera to \"Most Compatible\".");
    }
    if (type === "image/gif" || name.endsWith(".gif")) {
      return gettext("GIF images cannot be used. Please choose a photo in JPEG, PNG, BMP or WebP format.");
    }
    if (type && !TYPES.includes(type)) {
      return gettext("This type of file cannot be used. Please choose a photo in JPEG, PNG, BMP or WebP format.");
    }
    if (file.size < MIN_BYTES) return gettext("This file is too small (under 5 KB). Please choose a larger, sharper photo.");
    if (file.size > MAX_BYTES) return gettext("This photo is larger than 5 MB. Please choose a smaller photo.");
    const size = await imageSize(file).catch(() => null);
    if (!size) return gettext("This file could not be opened as a photo. Please choose a JPEG, PNG, BMP or WebP photo.");
    if (Math.min(size.width, size.height) <= MIN_SIDE) {
      return fill(gettext("This photo is too small (%(width)s × %(height)s pixels). Each side must be more than 150 pixels."), size);
    }
    if (Math.max(size.width, size.height) > MAX_SIDE) {
      return fill(gettext("This photo is too large (%(width)s × %(height)s pixels). Each side must be at most 4096 pixels."), size);
    }
    return "";
  }

  /** The pixel size of an image file, read with an Image object (decoded by the browser, never uploaded). */
  function imageSize(file) {
    const url = URL.createObjectURL(file);
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve({ width: image.naturalWidth, height: image.naturalHeight });
      image.onerror = reject;
      image.src = url;
    }).finally(() => URL.revokeObjectURL(url));
  }

  /** Seconds as m:ss (nothing to pluralize in any language). */
  function clock(seconds) {
    const whole = Math.round(seconds);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  /** The JSON body, or null (empty, or an HTML error page: the status code says enough). */
  function parseJSON(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch (err) {
      return null;
    }
  }

  /** An API error as {status, code, message, resetAt, reasons}; status 0 means no answer at all. */
  function apiError(status, data) {
    const error = (data && data.error) || {};
    const fallback = status === 0 ? "network" : status === 404 ? "not_found" : "http_" + status;
    return {
      status: status, code: error.code || fallback, message: error.message || "", resetAt: error.reset_at || null,
      reasons: error.reasons || [], // the person check's refusal, in the page's language
    };
  }

  /** The sentence for an error, and the server's own message when it adds something (English details). */
  function describe(error, messages) {
    let text = friendly(error, messages);
    if (error.resetAt) {
      const time = new Date(error.resetAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      text += " " + fill(gettext("You can try again at %(time)s."), { time: time });
    }
    return { text: text, detail: error.message && error.message !== text ? error.message : "" };
  }

  class TryOnWidget {
    constructor(dialog) {
      this.dialog = dialog;
      this.api = dialog.dataset.tryonApi;
      this.messages = readMessages(dialog);
      this.language = dialog.dataset.tryonLanguage || document.documentElement.lang || "en";
      this.opener = this.product = this.photo = this.savedPhoto = this.checkedPhoto = this.job = null;
      this.cartUrl = dialog.dataset.tryonCartUrl || "";
      this.garmentIds = [];
      this.announced = ""; // "<job id>:<status>" of the last state event, so each is fired once
      this.shareLink = null;
      this.timer = 0;
      document.body.appendChild(dialog); // never inside a form or a link of the page
      dialog.addEventListener("click", (event) => this.onClick(event));
      this.part("download").addEventListener("click", () => this.emit("download", { url: this.part("download").href }));
      dialog.addEventListener("keydown", (event) => this.trapFocus(event));
      dialog.addEventListener("close", () => this.onClose());
      this.part("consent").addEventListener("change", () => this.updateConsent());
      const refine = this.part("refine");
      if (refine) refine.addEventListener("change", () => (this.part("gender").hidden = !refine.checked));
      this.part("file").addEventListener("change", (event) => this.onFile(event.target.files[0]));
    }

    part(name) {
      return this.dialog.querySelector('[data-tryon="' + name + '"]');
    }

    /** The button of an action (data-tryon-action). */
    action(name) {
      return this.dialog.querySelector('[data-tryon-action="' + name + '"]');
    }

    /** The ids of the garments tried on: the job's own once there is one, else the product's active ones. */
    garments() {
      if (this.job) return [this.job.top_garment, this.job.bottom_garment].filter((id) => id != null);
      return this.garmentIds.slice();
    }

    /** Dispatch "tryon:<name>"; detail = {product, garments, job} plus ``extra``. Returns the event. */
    emit(name, extra, cancelable) {
      const target = this.opener && this.opener.isConnected ? this.opener : this.dialog;
      const detail = Object.assign({ product: this.product, garments: this.garments(), job: this.job }, extra || {});
      const event = new CustomEvent("tryon:" + name, { bubbles: true, cancelable: !!cancelable, detail: detail });
      target.dispatchEvent(event);
      return event;
    }

    /** A job just created (or a new attempt): tryon:queued, then follow it. */
    queued(job) {
      this.job = job;
      this.emit("queued", { job: job });
      this.announced = job.id + ":queued";
      return this.onJob(job);
    }

    /** The job's state events (queued, succeeded, failed, canceled), each once per job and state. */
    announce(job) {
      const name = job.status === "succeeded" ? "succeeded" : job.status === "failed" ? "failed"
        : job.status === "canceled" ? "canceled" : job.status === "queued" ? "queued" : "";
      const key = job.id + ":" + name;
      if (!name || this.announced === key) return;
      this.announced = key;
      this.emit(name, { job: job });
    }

    csrfToken() {
      const input = this.dialog.querySelector("input[name=csrfmiddlewaretoken]");
      const cookie = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
      return input && input.value ? input.value : cookie ? decodeURIComponent(cookie[1]) : "";
    }

    /** One API call (XMLHttpRequest, for upload progress): resolves with the JSON body, rejects with apiError().
     * ``path`` is relative to the API root, or a site path ("/cart/add/") or URL of its own. */
    request(method, path, body, onProgress) {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open(method, /^(\/|https?:)/.test(path) ? path : this.api + path);
        xhr.timeout = 120000;
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("Accept-Language", this.language); // the server's messages in the page's language
        if (method !== "GET") xhr.setRequestHeader("X-CSRFToken", this.csrfToken());
        if (onProgress) xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
        xhr.onload = () => {
          const data = parseJSON(xhr.responseText);
          if (xhr.status >= 200 && xhr.status < 300) resolve(data);
          else reject(apiError(xhr.status, data));
        };
        xhr.onerror = xhr.ontimeout = () => reject(apiError(0, null));
        xhr.send(body || null);
      });
    }

    /** Open for ``product`` (an id); ``opener`` is the button that asked (null from the JS API). */
    open(product, name, opener) {
      product = String(product);
      if (product !== this.product) {
        this.stop();
        this.product = product;
        this.job = null;
        this.garmentIds = [];
        this.reset("", false);
        this.loadGarments();
      }
      this.opener = opener || null;
      this.returnFocus = opener || document.activeElement;
      this.productName = name || "";
      this.part("product-name").textContent = this.productName;
      if (!this.dialog.open) this.dialog.showModal();
      this.loadSavedPhoto();
      if (this.job && ACTIVE.includes(this.job.status)) this.poll(); // resume after a close
      this.emit("open", { product: product });
    }

    onClose() {
      this.stop();
      if (this.returnFocus && this.returnFocus.isConnected && this.returnFocus.focus) this.returnFocus.focus();
      this.emit("close", { job: this.job });
    }

    onClick(event) {
      if (event.target === this.dialog) return this.dialog.close(); // the backdrop
      const action = event.target.closest("[data-tryon-action]");
      const handlers = {
        close: () => this.dialog.close(),
        "use-saved": () => this.startJob(),
        "use-anyway": () => this.startJob(),
        "choose-another": () => this.chooseAnother(),
        forget: () => this.deletePhoto(gettext("Your saved photo was deleted.")),
        another: () => this.another(),
        delete: () => this.deleteAll(),
        retry: () => this.jobAction("retry"),
        cancel: () => this.jobAction("cancel"),
        "add-to-cart": () => this.addToCart(),
        share: () => this.share(),
        unshare: () => this.unshare(),
      };
      if (action) handlers[action.dataset.tryonAction]();
    }

    /** Keep Tab and Shift+Tab inside the dialog (a modal <dialog> alone lets focus reach the browser's UI). */
    trapFocus(event) {
      if (event.key !== "Tab") return;
      const items = Array.from(this.dialog.querySelectorAll(FOCUSABLE)).filter((el) => !el.disabled && el.getClientRects().length);
      const first = items[0];
      const last = items[items.length - 1];
      if (!first) return;
      if (event.shiftKey ? document.activeElement === first : document.activeElement === last) {
        event.preventDefault();
        (event.shiftKey ? last : first).focus();
      }
    }

    show(view, focus) {
      this.dialog.querySelectorAll("[data-tryon-view]").forEach((section) => {
        section.hidden = section.dataset.tryonView !== view;
      });
      if (focus !== false && this.dialog.open) this.dialog.querySelector('[data-tryon-view="' + view + '"] h3').focus();
    }

    setText(name, text, reveal) {
      const el = this.part(name);
      if (el.textContent !== text) el.textContent = text; // unchanged text is not announced again
      el.hidden = !text;
      if (text && reveal) el.scrollIntoView({ block: "nearest" }); // below the fold on a phone
    }

    reset(notice, focus) {
      this.show("start", focus);
      this.setText("notice", notice || "");
      this.setText("check", "");
      this.part("file").value = "";
      this.updateConsent();
    }

    updateConsent() {
      const agreed = this.part("consent").checked;
      this.part("file").disabled = !agreed;
      this.part("upload").classList.toggle("is-disabled", !agreed);
      this.part("upload-hint").hidden = agreed;
    }

    loadGarments() {
      const list = this.part("garments");
      const labels = { top: gettext("Top"), bottom: gettext("Bottom"), one_piece: gettext("Dress or one-piece") };
      list.textContent = "";
      this.part("keep-own-row").hidden = true;
      this.part("keep-own").checked = false;
      const product = this.product;
      this.request("GET", "products/" + product + "/garments/").then((garments) => {
        if (product === this.product) this.garmentIds = garments.map((garment) => garment.id);
        const refineRow = this.part("refine-row");
        if (refineRow) { // the second pass needs a top or a one-piece
          refineRow.hidden = !garments.some((garment) => garment.kind === "top" || garment.kind === "one_piece");
          if (refineRow.hidden) this.part("refine").checked = false;
        }
        const only = garments.length === 1 ? garments[0].kind : "";
        if (only === "top" || only === "bottom") { // the other half can be the shopper's own
          this.part("keep-own-label").textContent =
            only === "top" ? gettext("Keep my own trousers or skirt") : gettext("Keep my own top");
          this.part("keep-own-row").hidden = false;
        }
        garments.forEach((garment) => {
          const image = document.createElement("img");
          image.src = garment.image_url;
          image.alt = labels[garment.kind] || "";
          list.appendChild(document.createElement("li")).appendChild(image);
        });
      }, () => {}); // only a preview: the try-on works without it
    }

    loadSavedPhoto() {
      const saved = this.part("saved");
      this.request("GET", "photos/").then((photos) => {
        const photo = (this.savedPhoto = (photos && photos[0]) || null);
        saved.hidden = !photo;
        if (!photo) return;
        this.part("saved-image").src = photo.image_url;
        const date = new Date(photo.created_at).toLocaleDateString(this.language);
        this.part("saved-date").textContent = fill(gettext("Your photo from %(date)s is saved."), { date: date });
      }, () => (saved.hidden = true));
    }

    async onFile(file) {
      this.setText("check", "");
      if (!file) return;
      const problem = this.part("consent").checked ? await checkFile(file) : friendly({ code: "consent_required" }, this.messages);
      if (problem) {
        this.part("file").value = "";
        return this.setText("check", problem, true);
      }
      this.setPreview(URL.createObjectURL(file));
      this.show("progress");
      const uploading = (done) => this.progress("upload", done, gettext("Uploading your photo…"), "");
      uploading(0);
      const form = new FormData();
      form.append("image", file);
      form.append("consent", "true");
      try {
        this.savedPhoto = await this.request("POST", "photos/", form, uploading);
      } catch (error) {
        if (error.code === "InvalidPerson" && error.reasons.length) return this.photoCheck(error.reasons, null);
        this.show("start");
        const message = describe(error, this.messages);
        return this.setText("check", (message.text + " " + message.detail).trim(), true);
      }
      this.emit("uploaded", { photo: this.savedPhoto });
      const warnings = this.savedPhoto.warnings || [];
      if (warnings.length) return this.photoCheck(warnings.map((warning) => warning.message), this.savedPhoto);
      this.startJob();
    }

    /** The person check's findings, before anything is paid: with ``photo`` (kept, "warn") the shopper may
     * use it anyway; without (refused) only choose another. */
    photoCheck(reasons, photo) {
      this.checkedPhoto = photo;
      this.part("check-image").src = this.part("preview").src;
      this.part("check-lead").textContent = photo
        ? gettext("Your picture may not come out well with this photo:")
        : gettext("We cannot use this photo:");
      const list = this.part("reasons");
      list.textContent = "";
      reasons.forEach((reason) => (list.appendChild(document.createElement("li")).textContent = reason));
      this.dialog.querySelector("[data-tryon-action=use-anyway]").hidden = !photo;
      this.show("photo-check");
      this.emit("photo-check", { photo: photo, reasons: reasons, refused: !photo });
    }

    /** Leave a photo the check found fault with: a kept one is deleted (it was never used), then start over. */
    chooseAnother() {
      const photo = this.checkedPhoto;
      this.checkedPhoto = null;
      if (this.savedPhoto === photo) this.savedPhoto = null;
      this.reset();
      const gone = photo ? this.request("DELETE", "photos/" + photo.id + "/").catch(() => {}) : Promise.resolve();
      gone.then(() => this.loadSavedPhoto()); // an older saved photo is offered again
    }

    setPreview(src) {
      const preview = this.part("preview");
      if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
      preview.src = src;
      preview.hidden = false;
    }

    async startJob() {
      this.photo = this.savedPhoto;
      if (!this.photo) return;
      if (!this.part("preview").src.startsWith("blob:")) this.setPreview(this.photo.image_url);
      this.show("progress");
      this.progress("queue", null, gettext("Sending your photo…"), "");
      const form = new FormData();
      form.append("person_photo", this.photo.id);
      form.append("product", this.product);
      if (!this.part("keep-own-row").hidden && this.part("keep-own").checked) form.append("keep_own", "true");
      const refine = this.part("refine");
      if (refine && refine.checked) {
        const gender = this.dialog.querySelector("input[name=tryon-gender]:checked");
        form.append("refine", "true");
        form.append("gender", gender ? gender.value : "");
      }
      try {
        this.queued(await this.request("POST", "tryons/", form)); // created (or the same request's job handed back)
      } catch (error) {
        this.showError(error);
      }
    }

    poll() {
      if (!this.job || !this.dialog.open) return;
      this.request("GET", "tryons/" + this.job.id + "/").then(
        (job) => this.onJob(job),
        (error) => (error.status === 0 ? this.schedule(POLL_MS * 2) : this.showError(error)),
      );
    }

    schedule(delay) {
      this.stop();
      if (this.dialog.open) this.timer = setTimeout(() => this.poll(), delay);
    }

    stop() {
      clearTimeout(this.timer);
    }

    onJob(job) {
      this.job = job;
      this.announce(job);
      if (job.status === "succeeded") return this.showResult(job);
      if (!ACTIVE.includes(job.status)) return this.showError(job.error || { code: "Canceled", message: "" });
      const eta = job.eta_seconds == null ? "" : clock(Math.max(1, job.eta_seconds));
      const wait = eta ? fill(gettext("Expected wait: %(time)s."), { time: eta }) : "";
      if (job.status === "queued" || job.status === "submitting") {
        const place = job.queue_position ? fill(gettext("You are number %(position)s in the queue."), { position: job.queue_position }) : "";
        this.progress("queue", null, gettext("Waiting in the queue…"), (place + " " + wait).trim());
      } else {
        const elapsed = job.elapsed_seconds || 0;
        const soFar = fill(gettext("Time so far: %(time)s."), { time: clock(elapsed) });
        this.progress("generate", eta ? elapsed / (elapsed + job.eta_seconds) : null, gettext("Generating your picture…"), (soFar + " " + wait).trim());
      }
      this.schedule(POLL_MS);
    }

    /** Mark ``step`` current; ``done`` is a fraction, or null for an indeterminate bar. */
    progress(step, done, status, detail) {
      const steps = Array.from(this.dialog.querySelectorAll("[data-tryon-step]"));
      const index = steps.findIndex((item) => item.dataset.tryonStep === step);
      steps.forEach((item, i) => {
        item.classList.toggle("is-done", i < index);
        if (i === index) item.setAttribute("aria-current", "step");
        else item.removeAttribute("aria-current");
      });
      const bar = this.part("bar");
      if (done == null) bar.removeAttribute("value");
      else bar.value = done;
      this.setText("status", status);
      this.part("detail").textContent = detail;
    }

    showResult(job) {
      this.stop();
      const image = this.part("result");
      image.alt = fill(gettext("You wearing %(product)s"), { product: this.productName });
      image.src = this.part("download").href = job.result_url;
      this.action("add-to-cart").hidden = !(this.cartUrl || cartHandlers.size);
      this.setText("action-status", "");
      this.setText("action-error", "");
      this.showShare(null);
      this.show("result");
      this.emit("result", { job: job });
      this.request("GET", "tryons/" + job.id + "/share/").then((link) => this.job === job && this.showShare(link), () => {});
    }

    /** "Add to cart": the cancelable tryon:add-to-cart event; unless a handler took it, POST to the shop. */
    async addToCart() {
      const event = this.emit("add-to-cart", {}, true);
      if (event.defaultPrevented || !this.cartUrl) return;
      const button = this.action("add-to-cart");
      const form = new URLSearchParams();
      form.append("product", this.product);
      this.garments().forEach((id) => form.append("garment", id));
      if (this.job) form.append("tryon", this.job.id);
      this.setText("action-status", "");
      this.setText("action-error", "");
      button.disabled = true;
      try {
        const answer = (await this.request("POST", this.cartUrl, form)) || {};
        const status = this.part("action-status");
        status.textContent = answer.message || gettext("Added to your cart.");
        if (answer.cart_url) {
          const link = document.createElement("a");
          link.href = answer.cart_url;
          link.textContent = gettext("View your cart");
          status.append(" ", link);
        }
        status.hidden = false;
        status.scrollIntoView({ block: "nearest" });
        this.emit("added-to-cart", { response: answer });
      } catch (error) {
        const shown = error.status === 0 ? describe(error, this.messages).text
          : gettext("We could not add this to your cart. Please try again.");
        this.setText("action-error", (shown + " " + (error.message || "")).trim(), true);
      } finally {
        button.disabled = false;
      }
    }

    /** Show a live share link (``link``: {url, expires_at}) or, with null, the "Share" button again. */
    showShare(link) {
      this.shareLink = link;
      this.part("share-box").hidden = !link;
      this.action("share").hidden = !!link;
      this.part("share-note").hidden = !!link;
      if (!link) return;
      this.part("share-url").value = link.url;
      const date = new Date(link.expires_at).toLocaleDateString(this.language);
      this.part("share-status").textContent = fill(gettext("The link works until %(date)s."), { date: date });
    }

    /** "Share": make (or get) the link, then the system's share sheet, else copy it; the link stays shown. */
    async share() {
      if (!this.job) return;
      try {
        const link = await this.request("POST", "tryons/" + this.job.id + "/share/");
        this.showShare(link);
        this.part("share-box").scrollIntoView({ block: "nearest" }); // below the picture on most screens
        this.emit("share", { url: link.url, expires_at: link.expires_at });
        const status = this.part("share-status");
        const until = status.textContent;
        if (navigator.share) {
          await navigator.share({ title: this.productName || document.title, url: link.url }).catch(() => {});
        } else if (navigator.clipboard && navigator.clipboard.writeText) {
          const copied = await navigator.clipboard.writeText(link.url).then(() => true, () => false);
          status.textContent = (copied ? gettext("Link copied.") + " " : "") + until;
        }
        if (!navigator.share) this.part("share-url").select();
      } catch (error) {
        this.setText("action-error", describe(error, this.messages).text, true);
      }
    }

    /** "Stop sharing": the link ends now, on the server (the page and the picture answer 410). */
    async unshare() {
      if (!this.job) return;
      const link = this.shareLink;
      try {
        await this.request("DELETE", "tryons/" + this.job.id + "/share/");
        this.showShare(null);
        this.setText("action-status", gettext("This picture is no longer shared."), true);
        this.emit("unshare", { url: link ? link.url : null });
      } catch (error) {
        this.setText("action-error", describe(error, this.messages).text, true);
      }
    }

    showError(error) {
      this.stop();
      const message = describe(error, this.messages);
      const refused = PHOTO_ERRORS.includes(error.code) && this.photo;
      if (refused) this.deletePhoto(""); // a refused photo would only fail again: neither keep nor offer it
      this.setText("error", message.text);
      this.setText("error-detail", (message.detail + " " + (refused ? gettext("We did not keep this photo.") : "")).trim());
      this.part("error").dataset.code = error.code || "";
      this.dialog.querySelector("[data-tryon-action=retry]").hidden = !this.job || FINAL_ERRORS.includes(error.code);
      this.show("error");
      this.emit("error", { code: error.code, message: error.message, job: this.job });
    }

    another() {
      this.stop();
      this.job = null;
      this.reset();
      this.loadSavedPhoto();
    }

    async jobAction(name) {
      if (!this.job) return;
      try {
        const job = await this.request("POST", "tryons/" + this.job.id + "/" + name + "/");
        if (name === "retry") {
          this.show("progress");
          return this.queued(job); // a new attempt
        }
        this.job = job;
        this.announce(job);
        this.job = null;
        this.reset(friendly({ code: "Canceled" }, this.messages));
      } catch (error) {
        this.showError(error);
      }
    }

    deletePhoto(notice) {
      const photo = this.photo || this.savedPhoto;
      this.photo = this.savedPhoto = null;
      this.part("saved").hidden = true;
      if (!photo) return Promise.resolve();
      return this.request("DELETE", "photos/" + photo.id + "/").then(() => notice && this.setText("notice", notice), () => {});
    }

    async deleteAll() {
      const job = this.job;
      this.job = null;
      if (job) await this.request("DELETE", "tryons/" + job.id + "/").catch(() => {});
      await this.deletePhoto("");
      this.reset(gettext("Your photo and the picture were deleted."));
      this.emit("deleted", { job: job });
    }
  }

  /** Handlers registered with djangoTryon.on("add-to-cart"): while there is one, "Add to cart" shows. */
  const cartHandlers = new Set();

  function init(root) {
    (root || document).querySelectorAll("dialog[data-tryon-api]").forEach((dialog) => {
      if (!dialog.tryonWidget) dialog.tryonWidget = new TryOnWidget(dialog);
    });
  }

  /** The page's dialog (rendered by {% tryon_button %} or {% tryon_dialog %}), ready; null when none. */
  function widget() {
    const dialog = document.querySelector("dialog[data-tryon-api]");
    if (!dialog) return null;
    init();
    return dialog.tryonWidget;
  }

  // One listener for every button, including buttons added to the page later.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-tryon-open]");
    const dialog = button && document.getElementById(button.dataset.tryonOpen);
    if (!dialog) return;
    init();
    event.preventDefault();
    dialog.tryonWidget.open(button.dataset.tryonProduct, button.dataset.tryonProductName, button);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init());
  else init();

  /** The JavaScript API (docs/widget.rst): for shops that build their own UI around the dialog. */
  const api = {
    /** Open the dialog for a product id; ``options.name`` is shown as its name. False without a dialog. */
    open(productId, options) {
      const found = widget();
      if (!found) {
        console.warn("django-tryon: no dialog on this page; add {% tryon_dialog %} (or a {% tryon_button %})");
        return false;
      }
      let name = (options && options.name) || "";
      if (!name) {
        const button = document.querySelector('[data-tryon-product="' + String(productId).replace(/["\\]/g, "") + '"]');
        name = button ? button.dataset.tryonProductName || "" : "";
      }
      found.open(productId, name, null);
      return true;
    },
    /** Close the dialog (a running try-on goes on; opening again for the same product resumes it). */
    close() {
      const found = widget();
      if (found && found.dialog.open) found.dialog.close();
    },
    /** The current job (the REST API's JSON) or null. */
    job() {
      const found = widget();
      return found ? found.job : null;
    },
    /** Listen to "tryon:<name>" on the document; returns a function that stops listening. A handler of
     * "add-to-cart" also shows the "Add to cart" button (call event.preventDefault() to take the cart over). */
    on(name, handler) {
      const type = "tryon:" + name;
      document.addEventListener(type, handler);
      if (name === "add-to-cart") cartHandlers.add(handler);
      return () => {
        document.removeEventListener(type, handler);
        cartHandlers.delete(handler);
      };
    },
    init: init,
    checkFile: checkFile,
    describe: describe,
  };
  window.djangoTryon = window.djangoTryOn = api; // djangoTryOn: the earlier name, the same object
})();
