// The pane's validators (inboxpay/sidecar/static/validate.js) under node's own test runner:
// `node --test tests/pane/` (make test runs it). No build step, no dependencies.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ACTIVE_STATUSES, OPEN_STATUSES, PaymentStatus } from "../../inboxpay/sidecar/static/statuses.js";
import {
  cardDigits,
  expiryText,
  fieldError,
  luhn,
  normalizeExpiry,
  numberLooksValid,
  securityCodeLength,
  securityCodeLooksValid,
} from "../../inboxpay/sidecar/static/validate.js";

test("expiry is sent in one form, MM/YY or MM/YYYY, with the year as typed", () => {
  const cases = {
    "08/29": "08/29",
    "8/29": "08/29",
    " 08 / 29 ": "08/29",
    "08-29": "08/29",
    "08.2029": "08/2029",
    "0829": "08/29",
    "082029": "08/2029",
    "12/2030": "12/2030",
  };
  for (const [typed, sent] of Object.entries(cases)) assert.equal(normalizeExpiry(typed), sent, typed);
});

test("the pane guesses no century: a two-digit year stays two digits for the server", () => {
  assert.equal(normalizeExpiry("01/99"), "01/99");
  assert.equal(normalizeExpiry("12/00"), "12/00");
});

test("the pane judges no expiry: impossible or past ones go to the server as typed", () => {
  // Month 13, a year long gone, and a card that ran out last month: the server answers
  // invalid_expiry or expired_card, in Anywhere-on-Earth time, and the pane shows that.
  assert.equal(normalizeExpiry("13/29"), "13/29");
  assert.equal(normalizeExpiry("01/2001"), "01/2001");
  const now = new Date();
  const lastMonth = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  const typed = `${lastMonth.getMonth() + 1}/${lastMonth.getFullYear()}`;
  assert.match(normalizeExpiry(typed), /^\d{2}\/\d{4}$/);
  assert.equal(normalizeExpiry("soon"), "soon");
  assert.equal(normalizeExpiry(""), "");
  assert.equal(normalizeExpiry(undefined), "");
});

test("a saved card's expiry is shown as MM/YY", () => {
  assert.equal(expiryText(8, 2029), "08/29");
  assert.equal(expiryText(12, 2100), "12/00");
});

test("card numbers: digits without spaces or dashes, Luhn as the server checks it", () => {
  assert.equal(cardDigits("4242 4242-4242 4242"), "4242424242424242");
  assert.ok(luhn("4242424242424242"));
  assert.ok(!luhn("4242424242424241"));
  assert.ok(!luhn("42x2"));
  assert.ok(numberLooksValid("378282246310005"));
  assert.ok(!numberLooksValid("4242"));
  assert.ok(!numberLooksValid("42424242424242424242"));
});

test("security codes: 4 digits for American Express, 3 for the others", () => {
  assert.equal(securityCodeLength("amex"), 4);
  assert.equal(securityCodeLength("visa"), 3);
  assert.ok(securityCodeLooksValid(" 731 ", "visa"));
  assert.ok(!securityCodeLooksValid("7311", "visa"));
  assert.ok(securityCodeLooksValid("7311", "amex"));
  assert.ok(!securityCodeLooksValid("७३१", "visa"));
});

test("the server's field error goes to the field it names, in the pane's words", () => {
  const expired = { code: "expired_card", message: "the card has expired", field: "expiry" };
  assert.deepEqual(fieldError("add", expired), ["add-expiry", "This card has expired."]);
  const odd = { code: "something_new", message: "the server says why", field: "expiry" };
  assert.deepEqual(fieldError("edit", odd), ["edit-expiry", "the server says why"]);
  assert.deepEqual(fieldError("add", { code: "luhn_failed", message: "x", field: "number" }), [
    "add-number",
    "Check the card number: it is not a valid card number.",
  ]);
  assert.equal(fieldError("add", { code: "rate_limited", message: "x" }), null);
  assert.equal(fieldError("add", { code: "x", message: "x", field: "nickname" }), null);
  assert.equal(fieldError("add", null), null);
});

test("the generated statuses are frozen and consistent", () => {
  assert.ok(Object.isFrozen(PaymentStatus) && Object.isFrozen(OPEN_STATUSES));
  const all = Object.values(PaymentStatus);
  for (const status of [...OPEN_STATUSES, ...ACTIVE_STATUSES]) assert.ok(all.includes(status), status);
  assert.deepEqual([...ACTIVE_STATUSES].slice(0, OPEN_STATUSES.length), [...OPEN_STATUSES]);
});
