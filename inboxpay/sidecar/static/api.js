// The sidecar's API (docs/sidecar.md). Its state: the bearer token, and the generation
// of the current open, so that answers to an older open are dropped (as `Stale`).

import { waitForToken } from "./embed.js";

const apiBase = new URL("../v1/", location.href);

let generation = 0;
let token = null;

export class Stale extends Error {}
export class NetworkError extends Error {}
export class ApiFailure extends Error {
  constructor(reply) {
    super(reply.code || `http ${reply.status}`);
    this.reply = reply;
  }
}

// A new open: the token it came with, and every answer to an older open dropped.
export function startSession(newToken) {
  generation += 1;
  token = newToken;
}

export function setToken(newToken) {
  token = newToken;
}

// The generation of the current open, to tell later whether it is still current.
export function currentSession() {
  return generation;
}

export async function api(method, path, body, headers) {
  const mine = generation;
  for (let attempt = 0; ; attempt += 1) {
    const init = {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${token}`, ...headers },
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(new URL(path, apiBase), init);
    } catch {
      if (mine !== generation) throw new Stale();
      throw new NetworkError();
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        // A success we cannot read may still have moved money: treat it as lost, so a
        // payment is retried with the same Idempotency-Key and replayed, not repeated.
        if (response.ok) throw new NetworkError();
      }
    }
    if (mine !== generation) throw new Stale();
    // An expired token: ask the parent for a fresh one, then try once more. Safe for
    // payments too: a 401 comes before the Idempotency-Key is even looked at.
    if (response.status === 401 && attempt === 0 && (await waitForToken())) {
      if (mine !== generation) throw new Stale();
      continue;
    }
    const error = data && typeof data.error === "object" && data.error ? data.error : {};
    return { status: response.status, body: data, code: error.code || null, message: error.message || "", error };
  }
}

export function expect(reply, ...statuses) {
  if (!statuses.includes(reply.status)) throw new ApiFailure(reply);
  return reply.body;
}

// The token's subject. The token is for the API; reading its (unsigned-to-us) subject
// only fills a form field.
export function tokenSubject() {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return typeof claims.sub === "string" ? claims.sub : null;
  } catch {
    return null;
  }
}
