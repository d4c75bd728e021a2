// InboxPay task pane: one plain JavaScript module, no framework, no build step.
// The embedding protocol (postMessage between webmail and this page) is in
// docs/embedding.md; the API it calls is in docs/sidecar.md.
//
// Secrets: the bearer token lives only in `state`; the card number and security code
// live only in their form fields until sent, and the fields are emptied after. Nothing
// here writes to web storage, cookies, a URL or the console: there is no console call
// at all, and every async handler is wrapped so no rejection is ever left unhandled
// (the browser would log it).

import { OPEN_STATUSES, PaymentStatus } from "./statuses.js";
import {
  cardDigits,
  expiryText,
  fieldError as serverFieldError,
  normalizeExpiry,
  numberLooksValid,
  securityCodeLength,
  securityCodeLooksValid,
} from "./validate.js";

const $ = (id) => document.getElementById(id);

// Who may talk to us comes from the server-rendered <meta>, never from the parent.
const config = readConfig();
const allowedOrigins = new Set(config.origins);
const locale = navigator.language || "en";
const apiBase = new URL("../v1/", location.href);

const OPEN = new Set(OPEN_STATUSES);
const POLL_MS = 1500;
// A bank's 3-D Secure page can take a while (an SMS, an app); a slow processor should not.
const CHALLENGE_POLL_LIMIT_MS = 15 * 60 * 1000;
const PENDING_POLL_LIMIT_MS = 2 * 60 * 1000;
const TOKEN_WAIT_MS = 20 * 1000;
const MAX_MESSAGE_CHARS = 16384;

const BRANDS = {
  visa: "Visa",
  mastercard: "Mastercard",
  amex: "American Express",
  discover: "Discover",
  jcb: "JCB",
  diners: "Diners Club",
  unionpay: "UnionPay",
};

const DECLINE_REASONS = {
  generic_decline: "Your card's bank declined the payment. Try another card, or contact your bank.",
  insufficient_funds: "The card does not have enough funds for this payment.",
  incorrect_cvc: "The security code was not correct.",
  invalid_cvc: "The security code is not valid for this card.",
  expired_card: "The card has expired.",
  invalid_number: "The card number was not accepted.",
  authentication_failed: "Your bank's security check (3-D Secure) was not completed.",
  test_mode_live_card: "This is a test processor: it accepts only test card numbers.",
  processor_unavailable: "The payment processor could not be reached.",
  processor_error: "The payment processor could not complete the payment.",
  not_received: "The payment processor did not receive the payment.",
};

const state = {
  generation: 0, // bumped by every open: answers to an older open are dropped
  parentOrigin: null,
  card: null,
  token: null,
  review: null,
  methods: [],
  profile: null,
  method: null,
  editing: null,
  attemptKey: null, // one Idempotency-Key per payment attempt, reused by its retries
  paying: false,
  busy: false,
  payment: null,
  pollTimer: null,
  pollCheck: null,
  tokenWaiters: [],
};

class Stale extends Error {}
class NetworkError extends Error {}
class ApiFailure extends Error {
  constructor(reply) {
    super(reply.code || `http ${reply.status}`);
    this.reply = reply;
  }
}

function readConfig() {
  const meta = document.querySelector('meta[name="inboxpay-config"]');
  try {
    const value = JSON.parse(meta ? meta.content : "{}");
    return {
      origins: Array.isArray(value.origins) ? value.origins : [],
      invoice_hosts: value.invoice_hosts && typeof value.invoice_hosts === "object" ? value.invoice_hosts : {},
    };
  } catch {
    return { origins: [], invoice_hosts: {} };
  }
}

// --- talking to the parent -------------------------------------------------------

function post(message) {
  if (state.parentOrigin) window.parent.postMessage(message, state.parentOrigin);
}

function announceReady() {
  // "ready" carries nothing, so it may go out before we know the parent's origin; where
  // the browser tells us the parent's origin, it goes there and nowhere else.
  const ancestors = location.ancestorOrigins;
  let target = "*";
  if (ancestors && ancestors.length > 0) {
    if (!allowedOrigins.has(ancestors[0])) return;
    target = ancestors[0];
  }
  window.parent.postMessage({ type: "inboxpay:ready" }, target);
}

function onMessage(event) {
  // Only our parent, and only from a configured origin: any other window may post to
  // us (an iframe next to us, a popup opener), and must be ignored.
  if (window.parent === window || event.source !== window.parent) return;
  if (!allowedOrigins.has(event.origin)) return;
  const data = event.data;
  if (!data || typeof data !== "object") return;
  if (data.type === "inboxpay:open") {
    if (!validString(data.card) || !validString(data.token)) return;
    state.parentOrigin = event.origin;
    guard(openCard)(data.card, data.token);
  } else if (data.type === "inboxpay:token") {
    if (event.origin !== state.parentOrigin || !validString(data.token)) return;
    state.token = data.token;
    for (const waiter of [...state.tokenWaiters]) waiter(true);
  }
}

function validString(value) {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_MESSAGE_CHARS;
}

function waitForToken() {
  if (!state.parentOrigin) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      state.tokenWaiters = state.tokenWaiters.filter((w) => w !== done);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), TOKEN_WAIT_MS);
    state.tokenWaiters.push(done);
    post({ type: "inboxpay:token-needed" });
  });
}

function sendResult(status, paymentId, reason) {
  const message = { type: "inboxpay:result", status, payment_id: paymentId || null };
  if (reason) message.reason = reason;
  post(message);
}

// --- the API -----------------------------------------------------------------------

async function api(method, path, body, headers) {
  const generation = state.generation;
  for (let attempt = 0; ; attempt += 1) {
    const init = {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${state.token}`, ...headers },
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(new URL(path, apiBase), init);
    } catch {
      if (generation !== state.generation) throw new Stale();
      throw new NetworkError();
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        // A success we cannot read may still have moved money: treat it as lost, so a
        // payment is retried with the same Idempotency-Key and replayed, not repeated.
        if (response.ok) throw new NetworkError();
      }
    }
    if (generation !== state.generation) throw new Stale();
    // An expired token: ask the parent for a fresh one, then try once more. Safe for
    // payments too: a 401 comes before the Idempotency-Key is even looked at.
    if (response.status === 401 && attempt === 0 && (await waitForToken())) {
      if (generation !== state.generation) throw new Stale();
      continue;
    }
    const error = data && typeof data.error === "object" && data.error ? data.error : {};
    return { status: response.status, body: data, code: error.code || null, message: error.message || "", error };
  }
}

function expect(reply, ...statuses) {
  if (!statuses.includes(reply.status)) throw new ApiFailure(reply);
  return reply.body;
}

function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof Stale) return;
      state.busy = false;
      if (e instanceof NetworkError) {
        showBlocked("InboxPay can't be reached", "Check your connection, then close this pane and open the invoice again.");
      } else if (e instanceof ApiFailure && e.reply.status === 401) {
        showSessionExpired();
      } else if (e instanceof ApiFailure) {
        showBlocked("Something went wrong", `${e.reply.message || "The request failed."} Close this pane and try again.`);
      } else {
        showBlocked("Something went wrong", "Close this pane and open the invoice again.");
      }
    }
  };
}

// --- screens and formatting --------------------------------------------------------

function show(name) {
  for (const section of document.querySelectorAll("[data-screen]")) {
    section.hidden = section.id !== `screen-${name}`;
  }
  window.scrollTo(0, 0);
  // Focus the new screen's heading so keyboard and screen reader users start there.
  const heading = $(`screen-${name}`).querySelector("h1");
  if (heading) heading.focus();
}

function announce(text) {
  $("live").textContent = text;
}

function money(amount, currency) {
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

function day(iso) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
  if (!match) return iso || "";
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeZone: "UTC" }).format(date);
}

function moment(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

function brandName(brand) {
  return BRANDS[brand] || "Card";
}

function cardLabel(method) {
  return `${brandName(method.brand)} ending ${method.last4}`;
}

function addressText(address) {
  if (!address) return "";
  const parts = [address.line1, address.line2, address.city, address.region, address.postal_code, address.country];
  return parts.filter((part) => part).join(", ");
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

function showBlocked(title, text) {
  $("blocked-title").textContent = title;
  $("blocked-text").textContent = text;
  show("blocked");
}

function showSessionExpired() {
  showBlocked("Your session has expired", "Close this pane and open the invoice again.");
}

// --- 1. review -----------------------------------------------------------------------

async function openCard(card, token) {
  state.generation += 1;
  stopPolling();
  Object.assign(state, {
    card,
    token,
    review: null,
    methods: [],
    profile: null,
    method: null,
    editing: null,
    attemptKey: null,
    paying: false,
    busy: false,
    payment: null,
  });
  $("loading-title").textContent = "Checking the invoice…";
  show("loading");
  const reply = await api("POST", "cards/verify", { card });
  if (reply.status === 200) {
    state.review = reply.body;
    renderReview(reply.body);
    return;
  }
  if (reply.status === 403 && reply.code === "not_a_recipient") {
    showBlocked(
      "This invoice was not addressed to you",
      "Only the people it was sent to can pay it here. If you need to pay it, ask the sender to send it to you.",
    );
    sendResult("unavailable", null, "not_a_recipient");
  } else if (reply.status === 422 && reply.code === "retired_key") {
    // Genuine, but signed by a key rotated out longer ago than the grace period: too old.
    showBlocked(...NOTICES.expired);
    sendResult("unavailable", null, "expired");
  } else if (reply.status === 400 || reply.status === 422) {
    showBlocked(
      "This invoice can't be verified",
      "Its payment details are damaged or were not issued by your mail system, so it can't be paid here.",
    );
    sendResult("unavailable", null, "invalid_card");
  } else {
    expect(reply, 200);
  }
}

const NOTICES = {
  paid: ["This invoice is already paid", "There is nothing more to do."],
  processing: ["A payment for this invoice is in progress", "Check back in a few minutes; it will not be charged twice."],
  expired: ["This payment request has expired", "Ask the merchant for a new invoice, or pay it from the full invoice."],
  org_disabled: ["Paying from mail is switched off for your organization", "Your administrator has turned this off. Pay from the full invoice instead."],
};

function renderReview(r) {
  $("review-amount").textContent = money(r.amount, r.currency);
  $("review-merchant").textContent = r.merchant;
  // The broker as the invoice's markup names it; no row when the markup names none.
  $("review-partner").textContent = r.broker || "";
  $("review-broker-row").hidden = !r.broker;
  $("review-number").textContent = r.invoice_number;
  $("review-due").textContent = day(r.due_date);
  $("review-overdue").hidden = !(r.overdue && r.status !== "paid");
  $("review-from").textContent = r.from || "—";

  const link = $("review-link");
  const href = invoiceLink(r);
  const partnerName = r.partner && r.partner.name ? r.partner.name : "the partner";
  if (href) {
    const host = new URL(href).hostname;
    link.replaceChildren(
      element(
        "a",
        { href, target: "_blank", rel: "noopener noreferrer", id: "review-invoice-link" },
        "View the full invoice",
        element("span", { class: "visually-hidden" }, ` (opens ${host} in a new window)`),
      ),
    );
  } else {
    link.textContent = `The link to the full invoice is not on ${partnerName}'s list of invoice addresses, so it is not offered.`;
  }

  const auth = r.authentication || {};
  const trust = [];
  if (auth.dkim_domain) trust.push(`Signed by ${auth.dkim_domain} (DKIM: ${auth.dkim || "unknown"})`);
  if (auth.spf_domain) trust.push(`Sent from a server that ${auth.spf_domain} authorizes (SPF: ${auth.spf || "unknown"})`);
  if (auth.aligned) trust.push("The signature matches the sender's address (aligned)");
  trust.push(`${partnerName} is a registered billing partner of your mail system`);
  $("review-trust").replaceChildren(...trust.map((text) => element("li", {}, text)));

  const notice = NOTICES[r.status];
  const payable = r.status === "payable";
  $("review-notice").classList.toggle("good", r.status === "paid");
  $("review-continue").hidden = !payable;
  $("review-close").hidden = payable;
  $("review-notice").hidden = payable;
  if (notice) {
    $("review-notice-title").textContent = notice[0];
    $("review-notice-text").textContent = notice[1];
  }
  show("review");
  const paymentId = r.payment ? r.payment.id : null;
  if (r.status === "paid") sendResult("already_paid", paymentId);
  else if (r.status === "processing") sendResult("pending", paymentId);
  else if (!payable) sendResult("unavailable", null, r.status);
}

function invoiceLink(r) {
  // Open the invoice only on a host the partner's allow-list names, whatever the card says.
  let url;
  try {
    url = new URL(r.invoice_url);
  } catch {
    return null;
  }
  const partnerId = r.partner && r.partner.id;
  const listed = Object.hasOwn(config.invoice_hosts, partnerId) ? config.invoice_hosts[partnerId] : [];
  const hosts = Array.isArray(listed) ? listed : [];
  if (url.protocol !== "https:" || url.username || url.password) return null;
  if (!hosts.includes(url.hostname.toLowerCase())) return null;
  return url.href;
}

// --- 2. payment and billing details -----------------------------------------------

async function loadWallet(message) {
  $("loading-title").textContent = "Loading your saved cards…";
  show("loading");
  const [methods, profile] = await Promise.all([api("GET", "payment-methods"), api("GET", "billing-profile")]);
  state.methods = expect(methods, 200).data;
  state.profile = expect(profile, 200);
  if (state.methods.length === 0) {
    showAdd(true);
  } else {
    showMethods(message);
  }
}

function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error, .form-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function fieldError(inputId, text) {
  const input = $(inputId);
  input.setAttribute("aria-invalid", "true");
  const note = $(`${inputId}-error`);
  note.textContent = text;
  note.hidden = false;
}

function formError(id, text) {
  $(id).textContent = text;
  $(id).hidden = false;
}

function focusFirstInvalid(form) {
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

function defaultCountry() {
  try {
    return new Intl.Locale(locale).maximize().region || "";
  } catch {
    return "";
  }
}

function fillAddress(prefix, address) {
  const a = address || {};
  $(`${prefix}-line1`).value = a.line1 || "";
  $(`${prefix}-line2`).value = a.line2 || "";
  $(`${prefix}-city`).value = a.city || "";
  $(`${prefix}-region`).value = a.region || "";
  $(`${prefix}-postal`).value = a.postal_code || "";
  $(`${prefix}-country`).value = a.country || defaultCountry();
}

function readAddress(prefix) {
  return {
    line1: $(`${prefix}-line1`).value.trim(),
    line2: $(`${prefix}-line2`).value.trim(),
    city: $(`${prefix}-city`).value.trim(),
    region: $(`${prefix}-region`).value.trim(),
    postal_code: $(`${prefix}-postal`).value.trim(),
    country: $(`${prefix}-country`).value.trim().toUpperCase(),
  };
}

function checkAddress(prefix, address) {
  if (!address.line1) fieldError(`${prefix}-line1`, "Enter the first line of the billing address.");
  if (!address.city) fieldError(`${prefix}-city`, "Enter the city.");
  if (!address.postal_code) fieldError(`${prefix}-postal`, "Enter the postal code.");
  if (!/^[A-Z]{2}$/.test(address.country)) fieldError(`${prefix}-country`, "Enter the two-letter country code, for example GB or US.");
}

function checkNumber(inputId) {
  const digits = cardDigits($(inputId).value);
  if (!numberLooksValid(digits)) {
    fieldError(inputId, "Check the card number: it is not a valid card number.");
  }
  return digits;
}

function showServerFieldError(prefix, reply) {
  // The server judged the form (expiry above all): its error goes next to its field.
  const found = serverFieldError(prefix, reply.error);
  if (!found) return false;
  fieldError(found[0], found[1]);
  return true;
}

function showAdd(first) {
  const form = $("add-form");
  form.reset();
  clearErrors(form);
  const profile = state.profile || {};
  $("add-name").value = profile.name || "";
  fillAddress("add", profile.address);
  $("add-title").textContent = first ? "Add a card" : "Add another card";
  $("add-cancel").hidden = first;
  show("add");
}

async function submitAdd(event) {
  event.preventDefault();
  if (state.busy) return;
  const form = $("add-form");
  clearErrors(form);
  const digits = checkNumber("add-number");
  const expiry = normalizeExpiry($("add-expiry").value);
  const name = $("add-name").value.trim();
  if (!name) fieldError("add-name", "Enter the name on the card.");
  const address = readAddress("add");
  checkAddress("add", address);
  if (form.querySelector('[aria-invalid="true"]')) {
    focusFirstInvalid(form);
    return;
  }
  state.busy = true;
  $("add-submit").disabled = true;
  announce("Saving your card…");
  let reply;
  try {
    reply = await api("POST", "payment-methods", {
      number: digits,
      expiry,
      name,
      billing_address: address,
    });
  } catch (e) {
    if (e instanceof NetworkError) {
      formError("add-error", "InboxPay can't be reached. Check your connection and try again.");
      return;
    }
    throw e;
  } finally {
    state.busy = false;
    $("add-submit").disabled = false;
  }
  if (reply.status === 201) {
    form.reset(); // the number leaves the page as soon as the vault has it
    state.methods.push(reply.body);
    state.method = reply.body;
    await saveProfile(name, address);
    announce(`Saved ${cardLabel(reply.body)}.`);
    showCode();
    return;
  }
  if (reply.status === 409 && reply.code === "duplicate_payment_method") {
    form.reset();
    await loadWallet("This card is already saved: choose it below.");
    return;
  }
  if (reply.status === 400 && showServerFieldError("add", reply)) {
    focusFirstInvalid(form);
  } else if (reply.status === 429) {
    formError("add-error", "You have added too many cards today. Try again tomorrow, or use a saved card.");
  } else if (reply.status === 400) {
    formError("add-error", reply.message || "Check the details and try again.");
  } else {
    expect(reply, 201);
  }
}

async function saveProfile(name, address) {
  // The first card's details become the billing profile that prefills the next card.
  if (state.profile && state.profile.updated_at) return;
  const email = tokenSubject();
  if (!email) return;
  const reply = await api("PUT", "billing-profile", { name, email, address });
  if (reply.status === 200) state.profile = reply.body;
}

function tokenSubject() {
  // The token is for the API; reading its (unsigned-to-us) subject only fills a form field.
  try {
    const part = state.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return typeof claims.sub === "string" ? claims.sub : null;
  } catch {
    return null;
  }
}

function showMethods(message) {
  const list = $("methods-list");
  const chosen = state.method ? state.method.id : null;
  let checked = false;
  list.replaceChildren();
  for (const method of state.methods) {
    const isExpired = method.expired === true; // the server's verdict, in its time zone
    const label = cardLabel(method);
    const radio = element("input", {
      type: "radio",
      name: "method",
      value: method.id,
      id: `method-${method.id}`,
      disabled: isExpired,
    });
    if (!isExpired && !checked && (chosen === null || chosen === method.id)) {
      radio.checked = true;
      checked = true;
    }
    const details = [`Expires ${expiryText(method.exp_month, method.exp_year)}${isExpired ? " (expired: edit to update)" : ""}`];
    if (method.name) details.push(method.name);
    const item = element(
      "li",
      { class: "method" },
      element(
        "div",
        { class: "method-choice" },
        radio,
        element(
          "label",
          { for: `method-${method.id}` },
          element("span", { class: "method-title" }, method.nickname ? `${label} (${method.nickname})` : label),
          element("span", { class: "method-detail" }, details.join(" · ")),
          element("span", { class: "method-detail" }, addressText(method.billing_address)),
        ),
      ),
    );
    const edit = element("button", { type: "button", class: "link", "aria-label": `Edit ${label}` }, "Edit");
    const remove = element("button", { type: "button", class: "link", "aria-label": `Delete ${label}` }, "Delete");
    const confirmYes = element("button", { type: "button", class: "danger" }, "Delete card");
    const confirmNo = element("button", { type: "button", class: "secondary" }, "Keep");
    const confirm = element("div", { class: "confirm", role: "group", "aria-label": `Delete ${label}?` },
      element("p", {}, `Delete ${label}?`), confirmYes, confirmNo);
    confirm.hidden = true;
    const actions = element("div", { class: "method-actions" }, edit, remove);
    edit.addEventListener("click", () => showEdit(method));
    remove.addEventListener("click", () => {
      actions.hidden = true;
      confirm.hidden = false;
      confirmNo.focus();
    });
    confirmNo.addEventListener("click", () => {
      confirm.hidden = true;
      actions.hidden = false;
      remove.focus();
    });
    confirmYes.addEventListener("click", guard(() => deleteMethod(method)));
    item.append(actions, confirm);
    list.append(item);
  }
  clearErrors($("methods-form"));
  if (message) formError("methods-error", message);
  show("methods");
}

async function deleteMethod(method) {
  if (state.busy) return;
  state.busy = true;
  let reply;
  try {
    reply = await api("DELETE", `payment-methods/${encodeURIComponent(method.id)}`);
  } finally {
    state.busy = false;
  }
  if (reply.status !== 404) expect(reply, 204);
  state.methods = state.methods.filter((m) => m.id !== method.id);
  if (state.method && state.method.id === method.id) state.method = null;
  announce(`Deleted ${cardLabel(method)}.`);
  if (state.methods.length === 0) showAdd(true);
  else showMethods();
}

function submitMethods(event) {
  event.preventDefault();
  clearErrors($("methods-form"));
  const selected = $("methods-form").querySelector('input[name="method"]:checked');
  if (!selected) {
    formError("methods-error", "Choose a card, or add one.");
    return;
  }
  state.method = state.methods.find((m) => m.id === selected.value) || null;
  if (state.method) showCode();
}

function showEdit(method) {
  state.editing = method;
  const form = $("edit-form");
  form.reset();
  clearErrors(form);
  $("edit-title").textContent = `Edit ${cardLabel(method)}`;
  $("edit-expiry").value = expiryText(method.exp_month, method.exp_year);
  $("edit-nickname").value = method.nickname || "";
  fillAddress("edit", method.billing_address);
  show("edit");
}

async function submitEdit(event) {
  event.preventDefault();
  if (state.busy || !state.editing) return;
  const form = $("edit-form");
  clearErrors(form);
  const expiry = normalizeExpiry($("edit-expiry").value);
  const address = readAddress("edit");
  checkAddress("edit", address);
  if (form.querySelector('[aria-invalid="true"]')) {
    focusFirstInvalid(form);
    return;
  }
  state.busy = true;
  $("edit-submit").disabled = true;
  let reply;
  try {
    reply = await api("PATCH", `payment-methods/${encodeURIComponent(state.editing.id)}`, {
      expiry,
      nickname: $("edit-nickname").value.trim(),
      billing_address: address,
    });
  } catch (e) {
    if (e instanceof NetworkError) {
      formError("edit-error", "InboxPay can't be reached. Check your connection and try again.");
      return;
    }
    throw e;
  } finally {
    state.busy = false;
    $("edit-submit").disabled = false;
  }
  if (reply.status === 400) {
    if (!showServerFieldError("edit", reply)) formError("edit-error", reply.message || "Check the details and try again.");
    focusFirstInvalid(form);
    return;
  }
  const updated = expect(reply, 200);
  state.methods = state.methods.map((m) => (m.id === updated.id ? updated : m));
  if (state.method && state.method.id === updated.id) state.method = updated;
  state.editing = null;
  announce(`Saved ${cardLabel(updated)}.`);
  showMethods();
}

// --- 3. security code and pay ----------------------------------------------------------

function showCode() {
  const r = state.review;
  const method = state.method;
  const amount = money(r.amount, r.currency);
  $("code-amount").textContent = amount;
  $("code-summary").textContent = `To ${r.merchant} for invoice ${r.invoice_number}, with your ${cardLabel(method)}.`;
  $("code-label").textContent = `Security code of your ${cardLabel(method)}`;
  $("code-hint").textContent =
    method.brand === "amex" ? "The 4 digits on the front of the card." : "The 3 digits on the back of the card.";
  $("code-pay").textContent = `Pay ${amount}`;
  const form = $("code-form");
  form.reset();
  clearErrors(form);
  state.attemptKey = null; // a new attempt: the next Pay gets a new key
  show("code");
}

function newIdempotencyKey() {
  // getRandomValues, not randomUUID: the latter needs a secure context, and a pane
  // framed by a plain-http development webmail is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "pane-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setPaying(on) {
  state.paying = on;
  const button = $("code-pay");
  button.disabled = on;
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
  $("code-back").disabled = on;
}

async function submitPay(event) {
  event.preventDefault();
  // Disabled synchronously, before any await: a double click or a held Enter key can
  // never start a second request.
  if (state.paying) return;
  const form = $("code-form");
  clearErrors(form);
  const code = $("code-input").value.trim();
  if (!securityCodeLooksValid(code, state.method.brand)) {
    fieldError("code-input", `Enter the ${securityCodeLength(state.method.brand)}-digit security code.`);
    focusFirstInvalid(form);
    return;
  }
  setPaying(true);
  announce("Paying…");
  if (!state.attemptKey) state.attemptKey = newIdempotencyKey();
  let reply;
  try {
    for (let wait = 0; ; wait += 1) {
      reply = await api(
        "POST",
        "payments",
        { card: state.card, payment_method_id: state.method.id, security_code: code },
        { "Idempotency-Key": state.attemptKey },
      );
      // The first request with this key is still running (say, a retry raced it):
      // wait for it and get its answer, never a second charge.
      if (reply.status !== 409 || reply.code !== "idempotency_in_progress" || wait >= 20) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } catch (e) {
    if (e instanceof NetworkError) {
      // The charge may or may not have happened: keep the key, so Pay again replays it.
      formError("code-error", "The connection was lost. Press Pay again: you will not be charged twice.");
      announce("The connection was lost.");
      return;
    }
    throw e;
  } finally {
    setPaying(false);
  }
  if (reply.status === 201) {
    state.attemptKey = null;
    form.reset();
    handlePayment(reply.body);
    return;
  }
  if (reply.status >= 500) {
    // Nothing was charged (the sidecar says so with 503) and the key was released.
    formError("code-error", `${reply.message || "The payment could not be made."} Nothing was charged; try again in a moment.`);
    return;
  }
  if (reply.status === 409 && reply.code === "idempotency_in_progress") {
    formError("code-error", "Your payment is still being processed. Press Pay again in a moment: you will not be charged twice.");
    return;
  }
  state.attemptKey = null;
  payError(reply);
}

function payError(reply) {
  const form = $("code-form");
  switch (reply.code) {
    case "invalid_security_code":
      fieldError("code-input", "Check the security code.");
      focusFirstInvalid(form);
      return;
    case "security_code_locked":
      formError("code-error", "Too many wrong security codes for this card. Try again later, or use another card.");
      return;
    case "rate_limited":
      formError("code-error", "Too many payment attempts. Try again later.");
      return;
    case "expired_card":
      formError("code-error", "This card has expired. Edit its expiry date or use another card.");
      return;
    case "already_paid":
      state.review = { ...state.review, status: "paid" };
      renderReview(state.review);
      return;
    case "card_expired":
      state.review = { ...state.review, status: "expired" };
      renderReview(state.review);
      return;
    case "org_disabled":
      state.review = { ...state.review, status: "org_disabled" };
      renderReview(state.review);
      return;
    case "not_found":
      guard(loadWallet)("That card is no longer saved: choose another.");
      return;
    default:
      expect(reply, 201);
  }
}

function handlePayment(payment) {
  state.payment = payment;
  stopPolling();
  if (payment.status === PaymentStatus.SUCCEEDED) showReceipt(payment);
  else if (payment.status === PaymentStatus.DECLINED || payment.status === PaymentStatus.FAILED) showDeclined(payment);
  else if (payment.status === PaymentStatus.REQUIRES_ACTION) showChallenge(payment);
  else showProcessing(payment);
}

function showChallenge(payment) {
  let url = null;
  try {
    url = new URL(payment.challenge_url);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    showBlocked("Your bank's check can't be opened", "Close this pane and try again in a few minutes.");
    return;
  }
  // A new window (noopener), not a frame: the processor's page forbids framing, and
  // our CSP then needs no frame-src. We learn the outcome by asking our own API.
  $("challenge-link").href = url.href;
  $("challenge-status").textContent = "Waiting for your bank…";
  show("challenge");
  announce("Your bank wants to confirm it's you. Open your bank's check.");
  startPolling(payment.id, CHALLENGE_POLL_LIMIT_MS, () => {
    $("challenge-status").textContent = "We stopped checking automatically. Press “I've finished: check now” when you are done.";
  });
}

function showProcessing(payment) {
  $("processing-text").textContent = "This can take a moment. You will not be charged twice.";
  show("processing");
  startPolling(payment.id, PENDING_POLL_LIMIT_MS, () => {
    $("processing-text").textContent =
      "The payment is taking longer than usual. You can close this pane: it will appear in your payment history once it settles, and you will not be charged twice.";
    sendResult("pending", payment.id);
  });
}

function startPolling(paymentId, limitMs, onTimeout) {
  stopPolling();
  const generation = state.generation;
  const started = Date.now();
  let asking = false;
  const check = async () => {
    if (asking) return; // "check now" while a check runs: one answer is enough
    asking = true;
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
    let reply = null;
    try {
      reply = await api("GET", `payments/${encodeURIComponent(paymentId)}`);
    } catch (e) {
      if (e instanceof Stale) return;
      reply = null; // a dropped connection: just ask again next time
    } finally {
      asking = false;
    }
    if (generation !== state.generation || state.pollCheck !== check) return;
    if (reply && reply.status === 200 && !OPEN.has(reply.body.status)) {
      handlePayment(reply.body);
      return;
    }
    if (reply && reply.status === 401) {
      stopPolling();
      showSessionExpired();
      return;
    }
    if (Date.now() - started > limitMs) {
      onTimeout();
      return;
    }
    state.pollTimer = setTimeout(check, POLL_MS);
  };
  state.pollCheck = check;
  state.pollTimer = setTimeout(check, POLL_MS);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
  state.pollCheck = null;
}

// --- 4. result -------------------------------------------------------------------------

function showReceipt(p) {
  const amount = money(p.amount, p.currency);
  $("receipt-merchant-line").textContent = `You paid ${amount} to ${p.merchant}.`;
  $("receipt-amount").textContent = amount;
  $("receipt-merchant").textContent = p.merchant;
  $("receipt-invoice").textContent = p.invoice_number;
  $("receipt-card").textContent = cardLabel(p.payment_method || {});
  $("receipt-id").textContent = p.id;
  $("receipt-time").textContent = moment(p.updated_at || p.created_at);
  show("receipt");
  announce(`Payment complete. You paid ${amount} to ${p.merchant}.`);
  sendResult("succeeded", p.id);
}

function showDeclined(p) {
  const reason = p.decline_reason || "processor_error";
  $("declined-reason").textContent = DECLINE_REASONS[reason] || "The payment was declined.";
  $("declined-code").textContent = `(Reason: ${reason}.)`;
  show("declined");
  announce("Payment declined.");
}

// --- wiring ----------------------------------------------------------------------------

$("review-continue").addEventListener("click", guard(() => loadWallet()));
$("add-form").addEventListener("submit", guard(submitAdd));
$("add-cancel").addEventListener("click", () => showMethods());
$("methods-form").addEventListener("submit", guard(submitMethods));
$("methods-add").addEventListener("click", () => showAdd(false));
$("edit-form").addEventListener("submit", guard(submitEdit));
$("edit-cancel").addEventListener("click", () => showMethods());
$("code-form").addEventListener("submit", guard(submitPay));
$("code-back").addEventListener("click", () => showMethods());
$("declined-retry").addEventListener("click", () => showCode());
$("declined-other").addEventListener("click", guard(() => loadWallet()));
$("challenge-link").addEventListener("click", () => {
  $("challenge-status").textContent = "Waiting for your bank… Finish the check in the new window.";
});
$("challenge-check").addEventListener("click", () => {
  if (state.pollCheck) state.pollCheck();
  else if (state.payment) startPolling(state.payment.id, CHALLENGE_POLL_LIMIT_MS, () => {});
});
// Hints as the user goes: a field's error goes away once it is edited, and the number is
// checked when the user leaves it (the server still decides; the expiry only it judges).
for (const input of document.querySelectorAll("input")) {
  input.addEventListener("input", () => {
    if (!input.hasAttribute("aria-invalid")) return;
    input.removeAttribute("aria-invalid");
    const note = $(`${input.id}-error`);
    if (note) note.hidden = true;
  });
}
$("add-number").addEventListener("change", () => {
  if ($("add-number").value.trim()) checkNumber("add-number");
});
for (const button of document.querySelectorAll('[data-action="close"]')) {
  button.addEventListener("click", () => post({ type: "inboxpay:close" }));
}

window.addEventListener("message", onMessage);
if (window.parent === window) {
  show("toplevel"); // opened on its own, not embedded: there is nobody to take a card from
} else {
  announceReady();
}
