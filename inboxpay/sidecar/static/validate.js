// What the pane checks and rewrites in the card form before it talks to the server: pure
// functions, no DOM, so that node's test runner tests them (tests/pane/, no build step).
//
// Expiry is only normalised, never judged: the server reads a two-digit year and decides
// whether a card has expired (Anywhere-on-Earth), and the pane shows its field error. A
// pane that guessed on its own would disagree with it around a century or a midnight.

// "8/29", "08 / 29", "08-2029", "0829" and "082029" are what people type for 08/29.
const EXPIRY_SHAPES = [/^(\d{1,2})\s*[/\-.\s]\s*(\d{2}|\d{4})$/, /^(\d{2})(\d{2}|\d{4})$/];

// The expiry as the user typed it, in the one form the server reads: "MM/YY" or
// "MM/YYYY", the month zero-padded, the year's digits as typed. Text of another shape is
// sent as it is (trimmed): the server refuses it with a field error.
export function normalizeExpiry(text) {
  const value = String(text ?? "").trim();
  for (const shape of EXPIRY_SHAPES) {
    const match = shape.exec(value);
    if (match) return `${match[1].padStart(2, "0")}/${match[2]}`;
  }
  return value;
}

// How a saved card's expiry is shown and prefilled for editing: MM/YY.
export function expiryText(month, year) {
  return `${String(month).padStart(2, "0")}/${String(year).slice(-2)}`;
}

// The digits of a card number as typed with spaces or dashes.
export function cardDigits(text) {
  return String(text ?? "").replace(/[\s-]/g, "");
}

// The Luhn (mod 10) check of ISO/IEC 7812-1, the same one the server makes.
export function luhn(digits) {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// A hint only (the server decides): 12 to 19 digits that pass Luhn.
export function numberLooksValid(digits) {
  return /^\d{12,19}$/.test(digits) && luhn(digits);
}

// American Express prints 4 digits on the front; the others 3 on the back.
export function securityCodeLength(brand) {
  return brand === "amex" ? 4 : 3;
}

export function securityCodeLooksValid(code, brand) {
  return new RegExp(`^\\d{${securityCodeLength(brand)}}$`).test(String(code ?? "").trim());
}

// The pane's words for the server's card-form errors; a code not listed here shows the
// server's own message.
const FIELD_TEXT = {
  luhn_failed: "Check the card number: it is not a valid card number.",
  invalid_number: "Check the card number: it is not a valid card number.",
  unsupported_brand: "This kind of card is not accepted.",
  invalid_expiry: "Enter the expiry date as MM/YY, for example 08/29.",
  expired_card: "This card has expired.",
};

// Which input of the form (ids "<prefix>-number", "<prefix>-expiry") shows a 400 answer
// to a card form, and what it says: [inputId, text], or null when the server named no
// field of this form.
export function fieldError(prefix, error) {
  if (!error || typeof error !== "object" || typeof error.field !== "string") return null;
  if (!["number", "expiry"].includes(error.field)) return null;
  const text = FIELD_TEXT[error.code] || error.message || "Check this field.";
  return [`${prefix}-${error.field}`, text];
}
