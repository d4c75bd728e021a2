// InboxPay task pane: plain JavaScript modules, no framework, no build step. This one
// wires the page together; each step of the pane is a module of its own:
//
//   embed.js   talking to the parent (docs/embedding.md)
//   api.js     the sidecar's API (docs/sidecar.md), the token
//   ui.js      screens, forms and formatting
//   review.js  1. the invoice, as the sidecar checked it
//   wallet.js  2. payment and billing details: the saved cards
//   pay.js     3. security code and pay, the bank's check, the wait
//   result.js  4. the receipt, or the decline
//   validate.js, statuses.js, config.js: pure helpers and constants
//
// Each module keeps its own state, and a new open resets all of it.
//
// Secrets: the bearer token lives only in api.js; the card number and security code
// live only in their form fields until sent, and the fields are emptied after. Nothing
// here writes to web storage, cookies, a URL or the console: there is no console call
// at all, and every async handler is wrapped (`guard`) so no rejection is ever left
// unhandled (the browser would log it).

import { setToken, startSession } from "./api.js";
import { announceReady, listen, post } from "./embed.js";
import { checkNow, resetPay, showCode, submitPay, whenCardGone } from "./pay.js";
import { openCard } from "./review.js";
import { $, guard, show } from "./ui.js";
import {
  checkNumber,
  loadWallet,
  resetWallet,
  showAdd,
  showMethods,
  submitAdd,
  submitEdit,
  submitMethods,
} from "./wallet.js";

async function open(card, token) {
  startSession(token); // answers to an older open are dropped from here on
  resetPay();
  resetWallet();
  await openCard(card);
}

whenCardGone((message) => guard(loadWallet)(message));

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
$("challenge-check").addEventListener("click", checkNow);
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

listen(guard(open), setToken);
if (window.parent === window) {
  show("toplevel"); // opened on its own, not embedded: there is nobody to take a card from
} else {
  announceReady();
}
