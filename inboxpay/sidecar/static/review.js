// Step 1, review: the invoice the card describes, checked by the sidecar. Its state: the
// card (the signed header) and the sidecar's review of it.

import { config } from "./config.js";
import { api, expect } from "./api.js";
import { sendResult } from "./embed.js";
import { $, day, element, money, show, showBlocked, showLoading } from "./ui.js";

const NOTICES = {
  paid: ["This invoice is already paid", "There is nothing more to do."],
  processing: ["A payment for this invoice is in progress", "Check back in a few minutes; it will not be charged twice."],
  expired: ["This payment request has expired", "Ask the merchant for a new invoice, or pay it from the full invoice."],
  org_disabled: ["Paying from mail is switched off for your organization", "Your administrator has turned this off. Pay from the full invoice instead."],
};

let card = null;
let review = null;

// The card being paid and its review.
export function reviewed() {
  return { card, review };
}

export async function openCard(newCard) {
  card = newCard;
  review = null;
  showLoading("Checking the invoice…");
  const reply = await api("POST", "cards/verify", { card });
  if (reply.status === 200) {
    review = reply.body;
    renderReview(review);
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

// The server said the invoice is no longer payable (paid, expired, switched off): show so.
export function reviewAgain(status) {
  review = { ...review, status };
  renderReview(review);
}

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
