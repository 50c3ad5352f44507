// The demo page's client: the login flow of this server's API (docs/api.md), step by step, as
// any client makes it. Plain browser JavaScript, nothing to build, nothing from elsewhere.
"use strict";

const ACCEPT = "application/vnd.appgate.peer-v22+json";
const $ = (id) => document.getElementById(id);
let session = null; // {token, password, state} of the login in progress

class ApiError extends Error {}

async function call(method, path, { token, body } = {}) {
  const headers = { Accept: ACCEPT };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    throw new ApiError(`${response.status} ${answer.id}: ${answer.reason || answer.message}`);
  }
  return answer;
}

function show(...ids) { // the steps' forms and sections: these, and no other
  for (const part of document.querySelectorAll("main > form, main > section")) {
    part.hidden = !ids.includes(part.id);
  }
}

function deviceId() { // a random UUID, as clients send one
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
    hex.slice(20)].join("-");
}

async function start() {
  const names = await call("GET", "/admin/identity-providers/names");
  $("provider").replaceChildren(...names.data.map((idp) => new Option(idp.name, idp.name)));
  if (names.bannerMessage) {
    $("banner").textContent = names.bannerMessage;
    $("banner").hidden = false;
  }
}

async function signIn(event) {
  event.preventDefault();
  const password = $("password").value;
  const login = await call("POST", "/admin/authentication", { body: {
    providerName: $("provider").value, username: $("username").value, password,
    deviceId: deviceId(),
  } });
  session = { token: login.token, password, state: null };
  if (!login.user.needTwoFactorAuth) {
    return authorize();
  }
  // userPassword: a RADIUS provider in Challenge mode may send it; the others ignore it
  const factor = await call("POST", "/admin/authentication/otp/initialize",
    { token: session.token, body: { userPassword: password } });
  return secondFactor(factor);
}

async function secondFactor(factor) {
  if (factor.type === "Push") {
    show("push");
    const otp = factor.sendPassword ? session.password : "push"; // not checked without it
    return verified(await call("POST", "/admin/authentication/otp",
      { token: session.token, body: { otp } }));
  }
  session.state = factor.state || null;
  const prompts = {
    Secret: "Then type the code the app shows",
    AlreadySeeded: "The code your authenticator app shows",
    Challenge: factor.responseMessage || "The one-time password",
  };
  $("otp-prompt").textContent = prompts[factor.type];
  if (factor.type === "Secret") {
    $("qr").src = `data:image/jpeg;base64,${factor.barcode}`;
    $("secret-text").textContent = factor.secret;
    show("secret", "otp");
  } else {
    show("otp");
  }
  $("code").value = "";
  $("code").focus();
}

async function verify(event) {
  event.preventDefault();
  const body = { otp: $("code").value };
  if (session.state) {
    body.state = session.state;
  }
  const answer = await call("POST", "/admin/authentication/otp", { token: session.token, body });
  return answer.type === "Challenge" ? secondFactor(answer) : verified(answer); // or a round more
}

function verified(answer) {
  session.token = answer.token; // the MFA token
  return authorize();
}

async function authorize() {
  const full = await call("GET", "/admin/authorization", { token: session.token });
  session.token = full.token;
  const claims = {
    user: full.user.name,
    "MFA owed": String(full.user.needTwoFactorAuth),
    "audit logs": String(full.user.canAccessAuditLogs),
    privileges: JSON.stringify(full.user.privileges),
    expires: full.expires,
  };
  $("claims").replaceChildren(...Object.entries(claims).flatMap(([name, value]) => {
    const term = document.createElement("dt");
    const detail = document.createElement("dd");
    term.textContent = name;
    detail.textContent = value;
    detail.dataset.claim = name;
    return [term, detail];
  }));
  show("done");
}

async function logout() {
  await call("POST", "/admin/authentication/logout", { token: session.token });
  restart();
}

function restart() {
  session = null;
  $("error").hidden = true;
  $("restart").hidden = true;
  $("login").reset();
  show("login");
}

function reporting(step) { // an API error ends the step with its message, never silently
  return async (event) => {
    try {
      await step(event);
    } catch (error) {
      $("error").textContent = error instanceof ApiError ? error.message : `Error: ${error}`;
      $("error").hidden = false;
      $("restart").hidden = false;
    }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", reporting(signIn));
  $("otp").addEventListener("submit", reporting(verify));
  $("logout").addEventListener("click", reporting(logout));
  $("restart").addEventListener("click", restart);
  reporting(start)();
});
