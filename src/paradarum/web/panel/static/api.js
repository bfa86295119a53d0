// The panel's one way to talk to the JSON API: the same endpoints and rules that
// scripts use, authenticated with the panel session's JWT as a Bearer header.
// The JWT lives in sessionStorage (this tab only, gone when the tab closes); no
// cookie is ever used, so another site cannot make the browser act for the user.

const SESSION_KEY = "paradarum.session";
const HOME = "/account";
// Where a member without the second factor their account requires is sent.
const ENROL_PAGE = "/account/security";
// Account settings and its sections (/account/<section>): an unknown one is the
// server's "page not found", never another origin.
// The invitation page too: someone new signs in (or up) and comes back to accept.
const NEXT_PAGE = /^\/account(\/[a-z][a-z-]*)?$|^\/invitations$/;

export class ApiError extends Error {
  constructor(status, message, { fieldErrors = {}, redirecting = false } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fieldErrors = fieldErrors;
    // True when the page is already on its way to sign-in: nothing to show.
    this.redirecting = redirecting;
  }
}

// The session's expiry is the server's to judge (a 401), not this browser's clock.
export function readSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    if (value && typeof value.token === "string" && value.token) return { token: value.token };
  } catch {
    // Unreadable storage counts as signed out.
  }
  return null;
}

export function saveSession(data) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: data.token }));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

// Only known panel pages may be a `next`: never another origin or an arbitrary path.
export function safeNext(value) {
  return typeof value === "string" && NEXT_PAGE.test(value) ? value : HOME;
}

export function signInUrl({ reason = null, next = null } = {}) {
  const params = new URLSearchParams();
  if (reason) params.set("reason", reason);
  if (next) params.set("next", safeNext(next));
  const query = params.toString();
  return query ? `/signin?${query}` : "/signin";
}

/**
 * For the sign-in and sign-up pages: where to go afterwards, and the reason this page
 * was shown. Null when already signed in: then the page has moved on already.
 * `otherLink` (sign-in <-> sign-up) keeps the same destination.
 */
export function enterAuthPage(otherLink) {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get("next"));
  if (readSession()) {
    location.replace(next);
    return null;
  }
  if (params.has("next")) otherLink.search = new URLSearchParams({ next }).toString();
  return { next, reason: params.get("reason") };
}

// Send a signed-out or expired visitor to sign in; they come back here afterwards.
export function goToSignIn(reason = null) {
  clearSession();
  location.replace(signInUrl({ reason, next: location.pathname }));
}

function waitText(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function fallbackMessage(status) {
  if (status >= 500) return "Something went wrong on our side. Try again in a moment.";
  return `The request failed (HTTP ${status}).`;
}

// The URL of the next page from a `Link: <...>; rel="next"` header, if it is ours.
export function nextLink(headers) {
  const match = /<([^>]+)>\s*;\s*rel="next"/.exec(headers.get("Link") || "");
  return match && match[1].startsWith("/api/") ? match[1] : null;
}

/**
 * Call the API. Resolves with {data, message, headers}; rejects with an ApiError
 * whose message is the server's human sentence (plus field errors for 400s).
 * A 401 on an authenticated call means the session is over: back to sign in.
 */
export async function api(method, path, { body, auth = true, stepUp = true } = {}) {
  const headers = { Accept: "application/json" };
  if (auth) {
    const session = readSession();
    if (!session) {
      goToSignIn();
      throw new ApiError(401, "You are signed out.", { redirecting: true });
    }
    headers.Authorization = `Bearer ${session.token}`;
  }
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "Could not reach Paradarum. Check your connection and try again.");
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  if (response.ok && envelope && envelope.succeeded) {
    return { data: envelope.data, message: envelope.message, headers: response.headers };
  }
  if (response.status === 401 && auth) {
    goToSignIn("expired");
    throw new ApiError(401, "Your session has expired.", { redirecting: true });
  }
  const data = envelope && envelope.data;
  // An action that needs a recent sign-in: confirm in a dialog, then do it after all.
  if (response.status === 403 && auth && stepUp && data && data.stepUpRequired === true) {
    const { stepUp: confirmIdentity } = await import("./stepup.js");
    if (await confirmIdentity()) return api(method, path, { body, auth, stepUp: false });
    throw new ApiError(403, "Not done: your identity was not confirmed.");
  }
  // The account requires two-factor sign-in and this person has none yet: enrol first.
  if (response.status === 403 && auth && data && data.twoFactorEnrolmentRequired === true) {
    if (location.pathname !== ENROL_PAGE) {
      location.replace(`${ENROL_PAGE}?enrol=required`);
      throw new ApiError(403, envelope.message, { redirecting: true });
    }
  }
  let message = (envelope && envelope.message) || fallbackMessage(response.status);
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  if (response.status === 429 && retryAfter > 0) {
    message = `${message} You can try again in ${waitText(retryAfter)}.`;
  }
  throw new ApiError(response.status, message, {
    fieldErrors: (envelope && envelope.errors) || {},
  });
}
