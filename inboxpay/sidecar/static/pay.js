// Step 3, security code and pay: the payment, then the bank's check (3-D Secure) or the
// wait for the processor, by polling the sidecar. Its state is below.

import { api, currentSession, NetworkError, Stale } from "./api.js";
import { sendResult } from "./embed.js";
import { showDeclined, showReceipt } from "./result.js";
import { reviewed, reviewAgain } from "./review.js";
import { OPEN_STATUSES, PaymentStatus } from "./statuses.js";
import {
  $,
  announce,
  cardLabel,
  clearErrors,
  fieldError,
  focusFirstInvalid,
  formError,
  money,
  show,
  showBlocked,
  showSessionExpired,
} from "./ui.js";
import { securityCodeLength, securityCodeLooksValid } from "./validate.js";

const OPEN = new Set(OPEN_STATUSES);
const POLL_MS = 1500;
// A bank's 3-D Secure page can take a while (an SMS, an app); a slow processor should not.
const CHALLENGE_POLL_LIMIT_MS = 15 * 60 * 1000;
const PENDING_POLL_LIMIT_MS = 2 * 60 * 1000;

let method = null; // the card being paid with
let attemptKey = null; // one Idempotency-Key per payment attempt, reused by its retries
let paying = false;
let payment = null; // the payment made, while its outcome is awaited or shown
let pollTimer = null;
let pollCheck = null;
let cardGone = () => {};

// A new open: no payment, no polling.
export function resetPay() {
  stopPolling();
  method = null;
  attemptKey = null;
  paying = false;
  payment = null;
}

// What to do when the chosen card turns out to be deleted: `then(message)`.
export function whenCardGone(then) {
  cardGone = then;
}

// "I've finished: check now" on the bank's check screen.
export function checkNow() {
  if (pollCheck) pollCheck();
  else if (payment) startPolling(payment.id, CHALLENGE_POLL_LIMIT_MS, () => {});
}

// The security code screen for paying with `chosen` (by default, the card last chosen).
export function showCode(chosen = method) {
  method = chosen;
  const r = reviewed().review;
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
  attemptKey = null; // a new attempt: the next Pay gets a new key
  show("code");
}

function newIdempotencyKey() {
  // getRandomValues, not randomUUID: the latter needs a secure context, and a pane
  // framed by a plain-http development webmail is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "pane-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setPaying(on) {
  paying = on;
  const button = $("code-pay");
  button.disabled = on;
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
  $("code-back").disabled = on;
}

export async function submitPay(event) {
  event.preventDefault();
  // Disabled synchronously, before any await: a double click or a held Enter key can
  // never start a second request.
  if (paying) return;
  const form = $("code-form");
  clearErrors(form);
  const code = $("code-input").value.trim();
  if (!securityCodeLooksValid(code, method.brand)) {
    fieldError("code-input", `Enter the ${securityCodeLength(method.brand)}-digit security code.`);
    focusFirstInvalid(form);
    return;
  }
  setPaying(true);
  announce("Paying…");
  if (!attemptKey) attemptKey = newIdempotencyKey();
  let reply;
  try {
    for (let wait = 0; ; wait += 1) {
      reply = await api(
        "POST",
        "payments",
        { card: reviewed().card, payment_method_id: method.id, security_code: code },
        { "Idempotency-Key": attemptKey },
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
    attemptKey = null;
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
  attemptKey = null;
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
      reviewAgain("paid");
      return;
    case "card_expired":
      reviewAgain("expired");
      return;
    case "org_disabled":
      reviewAgain("org_disabled");
      return;
    case "not_found":
      cardGone("That card is no longer saved: choose another.");
      return;
    default:
      expect(reply, 201);
  }
}

function handlePayment(made) {
  payment = made;
  stopPolling();
  if (made.status === PaymentStatus.SUCCEEDED) showReceipt(made);
  else if (made.status === PaymentStatus.DECLINED || made.status === PaymentStatus.FAILED) showDeclined(made);
  else if (made.status === PaymentStatus.REQUIRES_ACTION) showChallenge(made);
  else showProcessing(made);
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
  const session = currentSession();
  const started = Date.now();
  let asking = false;
  const check = async () => {
    if (asking) return; // "check now" while a check runs: one answer is enough
    asking = true;
    clearTimeout(pollTimer);
    pollTimer = null;
    let reply = null;
    try {
      reply = await api("GET", `payments/${encodeURIComponent(paymentId)}`);
    } catch (e) {
      if (e instanceof Stale) return;
      reply = null; // a dropped connection: just ask again next time
    } finally {
      asking = false;
    }
    if (session !== currentSession() || pollCheck !== check) return;
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
    pollTimer = setTimeout(check, POLL_MS);
  };
  pollCheck = check;
  pollTimer = setTimeout(check, POLL_MS);
}

export function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
  pollCheck = null;
}
