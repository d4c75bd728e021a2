// DEVELOPMENT ONLY: the demo inbox plays the webmail's part of docs/embedding.md.
// It gets a token for the configured demo user from POST /demo/token, which only a
// development sidecar (on loopback) serves, and hands it to the pane with the card.

const pane = document.getElementById("pane");
const status = document.getElementById("demo-status");
const paneOrigin = new URL(pane.src, location.href).origin;
let ready = false;
let queued = null;

function send(message) {
  pane.contentWindow.postMessage(message, paneOrigin);
}

async function demoToken() {
  const response = await fetch("token", { method: "POST", cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`demo token: HTTP ${response.status}`);
  return (await response.json()).token;
}

window.addEventListener("message", (event) => {
  // Only the pane we embedded speaks to us.
  if (event.origin !== paneOrigin || event.source !== pane.contentWindow) return;
  const data = event.data || {};
  if (data.type === "inboxpay:ready") {
    ready = true;
    if (queued) send(queued);
    queued = null;
  } else if (data.type === "inboxpay:result") {
    const id = data.payment_id ? ` (payment ${data.payment_id})` : "";
    status.textContent = `Pane result: ${data.status}${data.reason ? `, ${data.reason}` : ""}${id}.`;
  } else if (data.type === "inboxpay:token-needed") {
    demoToken().then(
      (token) => send({ type: "inboxpay:token", token }),
      () => { status.textContent = "Could not renew the demo token: is the sidecar running?"; },
    );
  } else if (data.type === "inboxpay:close") {
    status.textContent = "The pane was closed. Choose Review and pay on a message to open another.";
  }
});

for (const button of document.querySelectorAll("button.pay")) {
  button.addEventListener("click", async () => {
    status.textContent = "Opening the invoice…";
    let token;
    try {
      token = await demoToken();
    } catch {
      status.textContent = "Could not get a demo token: is the sidecar running with demo_maildir set?";
      return;
    }
    const message = { type: "inboxpay:open", card: button.dataset.card, token };
    if (ready) send(message);
    else queued = message;
    status.textContent = "The invoice is open in the pane.";
    pane.scrollIntoView({ block: "nearest" });
    pane.focus();
  });
}

setTimeout(() => {
  if (!ready) status.textContent = "The pane has not loaded. Is this page's origin in [sidecar] webmail_origins?";
}, 5000);
