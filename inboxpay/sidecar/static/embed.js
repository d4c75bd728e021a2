// Talking to the parent (webmail), the protocol in docs/embedding.md. Its state: the
// parent's origin once it has opened us, and whoever waits for a fresh token.

import { allowedOrigins } from "./config.js";

const TOKEN_WAIT_MS = 20 * 1000;
const MAX_MESSAGE_CHARS = 16384;

let parentOrigin = null;
let tokenWaiters = [];

export function post(message) {
  if (parentOrigin) window.parent.postMessage(message, parentOrigin);
}

export function sendResult(status, paymentId, reason) {
  const message = { type: "inboxpay:result", status, payment_id: paymentId || null };
  if (reason) message.reason = reason;
  post(message);
}

export function announceReady() {
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

// Listens for the parent's messages: `onOpen(card, token)` runs for each "open",
// `onToken(token)` for each fresh token, asked for or not.
export function listen(onOpen, onToken) {
  window.addEventListener("message", (event) => {
    // Only our parent, and only from a configured origin: any other window may post to
    // us (an iframe next to us, a popup opener), and must be ignored.
    if (window.parent === window || event.source !== window.parent) return;
    if (!allowedOrigins.has(event.origin)) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.type === "inboxpay:open") {
      if (!validString(data.card) || !validString(data.token)) return;
      parentOrigin = event.origin;
      onOpen(data.card, data.token);
    } else if (data.type === "inboxpay:token") {
      if (event.origin !== parentOrigin || !validString(data.token)) return;
      onToken(data.token);
      for (const waiter of [...tokenWaiters]) waiter(true);
    }
  });
}

function validString(value) {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_MESSAGE_CHARS;
}

// Asks the parent for a fresh token: resolves true once one came, false after a while.
export function waitForToken() {
  if (!parentOrigin) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      tokenWaiters = tokenWaiters.filter((w) => w !== done);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), TOKEN_WAIT_MS);
    tokenWaiters.push(done);
    post({ type: "inboxpay:token-needed" });
  });
}
