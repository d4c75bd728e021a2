// Step 4, result: the receipt, or why the payment was declined. No state.

import { sendResult } from "./embed.js";
import { $, announce, cardLabel, money, moment, show } from "./ui.js";

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

export function showReceipt(p) {
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

export function showDeclined(p) {
  const reason = p.decline_reason || "processor_error";
  $("declined-reason").textContent = DECLINE_REASONS[reason] || "The payment was declined.";
  $("declined-code").textContent = `(Reason: ${reason}.)`;
  show("declined");
  announce("Payment declined.");
}
