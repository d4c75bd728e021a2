// What the server tells the pane, and the page's own constants: no state.

// Who may talk to us comes from the server-rendered <meta>, never from the parent.
function readConfig() {
  const meta = document.querySelector('meta[name="inboxpay-config"]');
  try {
    const value = JSON.parse(meta ? meta.content : "{}");
    return {
      origins: Array.isArray(value.origins) ? value.origins : [],
      invoice_hosts: value.invoice_hosts && typeof value.invoice_hosts === "object" ? value.invoice_hosts : {},
    };
  } catch {
    return { origins: [], invoice_hosts: {} };
  }
}

export const config = readConfig();
export const allowedOrigins = new Set(config.origins);
export const locale = navigator.language || "en";
