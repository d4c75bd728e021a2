// Step 2, payment and billing details: the saved cards (choose, add, edit, delete) and
// the billing profile that prefills a new card. Its state is below.

import { locale } from "./config.js";
import { api, expect, NetworkError, tokenSubject } from "./api.js";
import { showCode } from "./pay.js";
import {
  $,
  addressText,
  announce,
  cardLabel,
  clearErrors,
  element,
  fieldError,
  focusFirstInvalid,
  formError,
  guard,
  show,
  showLoading,
} from "./ui.js";
import {
  cardDigits,
  expiryText,
  fieldError as serverFieldError,
  normalizeExpiry,
  numberLooksValid,
} from "./validate.js";

let methods = []; // the saved cards
let profile = null; // the billing profile
let chosen = null; // the card chosen to pay with
let editing = null; // the card being edited
let busy = false; // a request is under way: a second click does nothing

// A new open starts with nothing loaded.
export function resetWallet() {
  methods = [];
  profile = null;
  chosen = null;
  editing = null;
  busy = false;
}

export async function loadWallet(message) {
  showLoading("Loading your saved cards…");
  const [methodsReply, profileReply] = await Promise.all([api("GET", "payment-methods"), api("GET", "billing-profile")]);
  methods = expect(methodsReply, 200).data;
  profile = expect(profileReply, 200);
  if (methods.length === 0) {
    showAdd(true);
  } else {
    showMethods(message);
  }
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

export function checkNumber(inputId) {
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

export function showAdd(first) {
  const form = $("add-form");
  form.reset();
  clearErrors(form);
  const prefill = profile || {};
  $("add-name").value = prefill.name || "";
  fillAddress("add", prefill.address);
  $("add-title").textContent = first ? "Add a card" : "Add another card";
  $("add-cancel").hidden = first;
  show("add");
}

export async function submitAdd(event) {
  event.preventDefault();
  if (busy) return;
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
  busy = true;
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
    busy = false;
    $("add-submit").disabled = false;
  }
  if (reply.status === 201) {
    form.reset(); // the number leaves the page as soon as the vault has it
    methods.push(reply.body);
    chosen = reply.body;
    await saveProfile(name, address);
    announce(`Saved ${cardLabel(reply.body)}.`);
    showCode(chosen);
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
  if (profile && profile.updated_at) return;
  const email = tokenSubject();
  if (!email) return;
  const reply = await api("PUT", "billing-profile", { name, email, address });
  if (reply.status === 200) profile = reply.body;
}

export function showMethods(message) {
  const list = $("methods-list");
  const chosenId = chosen ? chosen.id : null;
  let checked = false;
  list.replaceChildren();
  for (const method of methods) {
    const isExpired = method.expired === true; // the server's verdict, in its time zone
    const label = cardLabel(method);
    const radio = element("input", {
      type: "radio",
      name: "method",
      value: method.id,
      id: `method-${method.id}`,
      disabled: isExpired,
    });
    if (!isExpired && !checked && (chosenId === null || chosenId === method.id)) {
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
  if (busy) return;
  busy = true;
  let reply;
  try {
    reply = await api("DELETE", `payment-methods/${encodeURIComponent(method.id)}`);
  } finally {
    busy = false;
  }
  if (reply.status !== 404) expect(reply, 204);
  methods = methods.filter((m) => m.id !== method.id);
  if (chosen && chosen.id === method.id) chosen = null;
  announce(`Deleted ${cardLabel(method)}.`);
  if (methods.length === 0) showAdd(true);
  else showMethods();
}

export function submitMethods(event) {
  event.preventDefault();
  clearErrors($("methods-form"));
  const selected = $("methods-form").querySelector('input[name="method"]:checked');
  if (!selected) {
    formError("methods-error", "Choose a card, or add one.");
    return;
  }
  chosen = methods.find((m) => m.id === selected.value) || null;
  if (chosen) showCode(chosen);
}

function showEdit(method) {
  editing = method;
  const form = $("edit-form");
  form.reset();
  clearErrors(form);
  $("edit-title").textContent = `Edit ${cardLabel(method)}`;
  $("edit-expiry").value = expiryText(method.exp_month, method.exp_year);
  $("edit-nickname").value = method.nickname || "";
  fillAddress("edit", method.billing_address);
  show("edit");
}

export async function submitEdit(event) {
  event.preventDefault();
  if (busy || !editing) return;
  const form = $("edit-form");
  clearErrors(form);
  const expiry = normalizeExpiry($("edit-expiry").value);
  const address = readAddress("edit");
  checkAddress("edit", address);
  if (form.querySelector('[aria-invalid="true"]')) {
    focusFirstInvalid(form);
    return;
  }
  busy = true;
  $("edit-submit").disabled = true;
  let reply;
  try {
    reply = await api("PATCH", `payment-methods/${encodeURIComponent(editing.id)}`, {
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
    busy = false;
    $("edit-submit").disabled = false;
  }
  if (reply.status === 400) {
    if (!showServerFieldError("edit", reply)) formError("edit-error", reply.message || "Check the details and try again.");
    focusFirstInvalid(form);
    return;
  }
  const updated = expect(reply, 200);
  methods = methods.map((m) => (m.id === updated.id ? updated : m));
  if (chosen && chosen.id === updated.id) chosen = updated;
  editing = null;
  announce(`Saved ${cardLabel(updated)}.`);
  showMethods();
}
