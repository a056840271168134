// The REST client. Requests are authenticated either with a session token (Authorization: Bearer) or
// with an API key whose secret signs each request in the browser exactly like
// manticore_auth.sign_request: hex HMAC-SHA256 over timestamp + METHOD + path?query + body, the
// timestamp in milliseconds. WebCrypto needs a secure context: https, or http on localhost/127.0.0.1.

const encoder = new TextEncoder();

/** An error answer of the API: HTTP status, machine code and the server's message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Hex HMAC-SHA256 of `message` under `secret` (both strings, UTF-8). */
export async function hmacHex(secret, message) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new ApiError(0, "insecure_context", "API-key signing needs https or a localhost address");
  }
  const key = await crypto.subtle.importKey(
    "raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(signature, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The signature headers of one request (the body exactly as it will be sent). */
export async function signedHeaders(apiKey, apiSecret, method, pathWithQuery, body) {
  const timestamp = String(Date.now());
  const signature = await hmacHex(apiSecret, timestamp + method.toUpperCase() + pathWithQuery + body);
  return { "X-MC-APIKEY": apiKey, "X-MC-TIMESTAMP": timestamp, "X-MC-SIGNATURE": signature };
}

/** Talks to the API as nobody, a session (`{token}`) or an API key (`{apiKey, apiSecret}`). */
export class Api {
  constructor() {
    this.credentials = null;
  }

  /** Send a request; resolves to the parsed JSON, rejects with ApiError on an error answer. */
  async request(method, path, payload) {
    const body = payload === undefined ? "" : JSON.stringify(payload);
    const headers = {};
    if (body) headers["content-type"] = "application/json";
    const credentials = this.credentials;
    if (credentials && credentials.token) {
      headers.authorization = "Bearer " + credentials.token;
    } else if (credentials && credentials.apiKey) {
      Object.assign(headers, await signedHeaders(credentials.apiKey, credentials.apiSecret, method, path, body));
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: body || undefined, cache: "no-store" });
    } catch (error) {
      throw new ApiError(0, "network", "the server cannot be reached");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const code = (data && data.code) || "http_" + response.status;
      const message = (data && data.message) || response.statusText || "request failed";
      throw new ApiError(response.status, code, message);
    }
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, payload) { return this.request("POST", path, payload); }
  patch(path, payload) { return this.request("PATCH", path, payload); }
  delete(path) { return this.request("DELETE", path); }

  /** The WebSocket auth frame for the current credentials (an API key signs "GET /ws" with no body). */
  async streamAuthFrame() {
    const credentials = this.credentials;
    if (!credentials) return null;
    if (credentials.token) return { op: "auth", token: credentials.token };
    const headers = await signedHeaders(credentials.apiKey, credentials.apiSecret, "GET", "/ws", "");
    return {
      op: "auth",
      api_key: credentials.apiKey,
      timestamp: headers["X-MC-TIMESTAMP"],
      signature: headers["X-MC-SIGNATURE"],
    };
  }
}
