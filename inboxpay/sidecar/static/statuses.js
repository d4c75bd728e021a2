// Generated from inboxpay.store.model.PaymentStatus by
// `python -m inboxpay.sidecar.panejs`: do not edit.
export const PaymentStatus = Object.freeze({
  PENDING: "pending",
  REQUIRES_ACTION: "requires_action",
  SUCCEEDED: "succeeded",
  DECLINED: "declined",
  FAILED: "failed",
});
// Waiting for the processor or the cardholder: the pane keeps asking.
export const OPEN_STATUSES = Object.freeze(["pending", "requires_action"]);
// Holding the invoice: at most one such payment per invoice.
export const ACTIVE_STATUSES = Object.freeze(["pending", "requires_action", "succeeded"]);
