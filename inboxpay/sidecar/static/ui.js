// The page's screens, forms and formatting: DOM helpers every step uses. No state.

import { locale } from "./config.js";
import { ApiFailure, NetworkError, Stale } from "./api.js";

export const $ = (id) => document.getElementById(id);

const BRANDS = {
  visa: "Visa",
  mastercard: "Mastercard",
  amex: "American Express",
  discover: "Discover",
  jcb: "JCB",
  diners: "Diners Club",
  unionpay: "UnionPay",
};

// An event handler that never leaves a rejection unhandled (the browser would log it):
// a failure shows the screen that says what to do instead.
export function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof Stale) return;
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

// --- screens -----------------------------------------------------------------------

export function show(name) {
  for (const section of document.querySelectorAll("[data-screen]")) {
    section.hidden = section.id !== `screen-${name}`;
  }
  window.scrollTo(0, 0);
  // Focus the new screen's heading so keyboard and screen reader users start there.
  const heading = $(`screen-${name}`).querySelector("h1");
  if (heading) heading.focus();
}

export function showLoading(title) {
  $("loading-title").textContent = title;
  show("loading");
}

export function announce(text) {
  $("live").textContent = text;
}

export function showBlocked(title, text) {
  $("blocked-title").textContent = title;
  $("blocked-text").textContent = text;
  show("blocked");
}

export function showSessionExpired() {
  showBlocked("Your session has expired", "Close this pane and open the invoice again.");
}

export function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

// --- forms -------------------------------------------------------------------------

export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error, .form-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

export function fieldError(inputId, text) {
  const input = $(inputId);
  input.setAttribute("aria-invalid", "true");
  const note = $(`${inputId}-error`);
  note.textContent = text;
  note.hidden = false;
}

export function formError(id, text) {
  $(id).textContent = text;
  $(id).hidden = false;
}

export function focusFirstInvalid(form) {
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

// --- formatting --------------------------------------------------------------------

export function money(amount, currency) {
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

export function day(iso) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
  if (!match) return iso || "";
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return new Intl.DateTimeFormat(locale, { dateStyle: "long", timeZone: "UTC" }).format(date);
}

export function moment(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

function brandName(brand) {
  return BRANDS[brand] || "Card";
}

export function cardLabel(method) {
  return `${brandName(method.brand)} ending ${method.last4}`;
}

export function addressText(address) {
  if (!address) return "";
  const parts = [address.line1, address.line2, address.city, address.region, address.postal_code, address.country];
  return parts.filter((part) => part).join(", ");
}
