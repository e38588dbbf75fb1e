// Outband Authenticator: the webview side. Plain JS, no build step, no network: everything goes
// through Tauri IPC (commands in src/commands.rs, events from src/watch.rs). Text from requests is
// put on screen with textContent only, never as HTML.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const EVENT = "authenticator://event";
const $ = (id) => document.getElementById(id);

const state = {
  view: null,
  accounts: [],
  cards: new Map(), // request id -> { card, element }
  settings: null,
  pendingDeny: null,
};

// ---------- small helpers ----------

function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  // A separate tick makes screen readers read the same text twice in a row.
  setTimeout(() => { el.textContent = text; }, 30);
}

let bannerTimer = null;
function banner(text, kind = "info") {
  const el = $("banner");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

const MESSAGES = {
  wrong_pin: "Wrong PIN. Try again.",
  invalid_pin: "A PIN has 4 to 64 characters, without control characters.",
  pin_mismatch: "The two PINs differ.",
  pin_required: "Enter your PIN to approve.",
  number_match_required: "Type the number shown on the terminal.",
  request_expired: "This request has expired.",
  request_gone: "This request was already answered, cancelled or has expired.",
  unknown_request: "This request is no longer pending.",
  locked: "Unlock this account with its PIN first.",
  revoked: "This device was revoked at the server.",
  invalid_invite: null, // the core's message says what is wrong
  issuer_key_mismatch: "The server's key does not match the invitation. Do not continue: the link may point at an impostor.",
};

function errorText(err) {
  if (err && typeof err === "object" && err.code) {
    return MESSAGES[err.code] || err.message || err.code;
  }
  return String(err);
}

function showError(el, err) {
  el.textContent = err ? errorText(err) : "";
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function nowSeconds() {
  return Date.now() / 1000;
}

function formatIban(iban) {
  return iban.replace(/\s+/g, "").replace(/(.{4})/g, "$1 ").trim();
}

function hostOf(url) {
  try { return new URL(url).host; } catch (_) { return url; }
}

function when(unix) {
  return new Date(unix * 1000).toLocaleString();
}

// ---------- views ----------

const VIEWS = ["unlock", "requests", "enroll", "accounts", "access", "history", "settings"];

function show(view, { focus = true } = {}) {
  state.view = view;
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
  }
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "history") loadHistory();
  if (view === "access") loadGrants();
  if (view === "settings") loadSettings();
  if (view === "accounts") renderAccounts();
  if (!focus) return;
  const first = {
    unlock: "unlock-pin",
    enroll: "enroll-input",
  }[view];
  if (first) $(first).focus();
  else if (view === "requests" && firstCard()) firstCard().querySelector(".pin-input").focus();
  else $("main").focus();
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-view]");
  if (target) show(target.dataset.view);
});

// ---------- accounts ----------

const STATUS_TEXT = {
  locked: "Locked",
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Disconnected",
  revoked: "Revoked",
};

async function refreshAccounts() {
  state.accounts = await invoke("list_accounts");
  renderAccounts();
  renderLockedHint();
}

function renderLockedHint() {
  const locked = state.accounts.filter((a) => a.status.state === "locked");
  const hint = $("locked-hint");
  hint.hidden = locked.length === 0;
  hint.textContent = "";
  if (locked.length) {
    hint.append(`${locked.length === 1 ? "One account is" : `${locked.length} accounts are`} locked and cannot receive requests. `);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.dataset.view = state.accounts.length === locked.length ? "unlock" : "accounts";
    button.textContent = "Unlock";
    hint.append(button);
  }
}

function renderAccounts() {
  const list = $("account-list");
  list.textContent = "";
  $("no-accounts").hidden = state.accounts.length > 0;
  for (const view of state.accounts) {
    list.append(accountItem(view));
  }
}

function accountItem(view) {
  const li = document.createElement("li");
  li.className = "account";
  li.dataset.account = view.id;

  const who = document.createElement("p");
  who.className = "account-who";
  const name = document.createElement("strong");
  name.textContent = view.username;
  who.append(name, ` at ${hostOf(view.issuer)}`);

  const status = document.createElement("span");
  status.className = `status status-${view.status.state}`;
  status.textContent = STATUS_TEXT[view.status.state] || view.status.state;
  if (view.status.state === "disconnected") {
    status.title = view.status.error;
  }
  who.append(" ", status);

  const device = document.createElement("p");
  device.className = "account-device";
  const key = view.key_storage === "os_keyring" ? "key in the system keyring" : "key in a private file";
  device.textContent = `${view.device_name} · ${view.alg.toUpperCase()} · ${key} · added ${new Date(view.enrolled_at * 1000).toLocaleDateString()}`;
  li.append(who, device);

  if (view.status.state === "disconnected") {
    const detail = document.createElement("p");
    detail.className = "hint";
    detail.textContent = `${view.status.error}. Retrying by itself.`;
    li.append(detail);
  }
  if (view.status.state === "revoked") {
    const detail = document.createElement("p");
    detail.className = "hint";
    detail.textContent = "This device was revoked at the server and receives nothing. Remove the account.";
    li.append(detail);
  }
  if (view.status.state === "locked") {
    li.append(pinForm({
      id: `unlock-${view.id}`,
      label: "PIN",
      button: "Unlock",
      buttonClass: "primary",
      onSubmit: async (pin) => {
        await invoke("unlock", { pin, account: view.id });
        banner(`Unlocked ${view.username}.`);
        await refreshAccounts();
      },
    }));
  }

  const remove = document.createElement("details");
  remove.className = "remove";
  const summary = document.createElement("summary");
  summary.textContent = "Remove this account…";
  remove.append(summary);
  const warning = document.createElement("p");
  warning.className = "hint";
  warning.textContent = "Removing revokes this device at the server and deletes its key here.";
  remove.append(warning, pinForm({
    id: `remove-${view.id}`,
    label: "PIN",
    button: "Remove",
    buttonClass: "danger",
    force: true,
    onSubmit: async (pin, force) => {
      await invoke("remove_account", { account: view.id, pin, force });
      banner(`Removed ${view.username}.`);
      await refreshAccounts();
    },
  }));
  li.append(remove);
  return li;
}

function pinForm({ id, label, button, buttonClass, force, onSubmit }) {
  const form = document.createElement("form");
  form.className = "inline-form";
  form.noValidate = true;
  const labelEl = document.createElement("label");
  labelEl.htmlFor = `${id}-pin`;
  labelEl.textContent = label;
  const input = document.createElement("input");
  input.id = `${id}-pin`;
  input.type = "password";
  input.inputMode = "numeric";
  input.autocomplete = "off";
  input.maxLength = 64;
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.className = buttonClass;
  submit.textContent = button;
  const error = document.createElement("p");
  error.className = "error";
  error.setAttribute("role", "alert");
  form.append(labelEl, input, submit);
  let forceBox = null;
  if (force) {
    const wrap = document.createElement("div");
    wrap.className = "check";
    forceBox = document.createElement("input");
    forceBox.type = "checkbox";
    forceBox.id = `${id}-force`;
    const forceLabel = document.createElement("label");
    forceLabel.htmlFor = forceBox.id;
    forceLabel.textContent = "Also when the server cannot be reached";
    wrap.append(forceBox, forceLabel);
    form.append(wrap);
  }
  form.append(error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    submit.disabled = true;
    try {
      await onSubmit(input.value, forceBox ? forceBox.checked : false);
    } catch (err) {
      showError(error, err);
      input.value = "";
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---------- unlock ----------

$("unlock-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const pin = $("unlock-pin");
  showError($("unlock-error"), null);
  try {
    const report = await invoke("unlock", { pin: pin.value });
    pin.value = "";
    await refreshAccounts();
    const more = report.locked.length
      ? ` ${report.locked.length} account${report.locked.length === 1 ? "" : "s"} with another PIN stay locked.`
      : "";
    banner(`Unlocked ${report.unlocked.length} account${report.unlocked.length === 1 ? "" : "s"}.${more}`);
    show("requests");
  } catch (err) {
    showError($("unlock-error"), err);
    pin.value = "";
    pin.focus();
  }
});

// ---------- enroll ----------

let qrImage = null;

$("enroll-qr").addEventListener("change", () => {
  const file = $("enroll-qr").files[0];
  const note = $("enroll-qr-note");
  qrImage = null;
  note.hidden = true;
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    qrImage = reader.result; // a data: URL; the command strips the prefix
    note.textContent = `Using the QR code in ${file.name}.`;
    note.hidden = false;
  };
  reader.onerror = () => showError($("enroll-error"), "The image could not be read.");
  reader.readAsDataURL(file);
});

$("enroll-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("enroll-error");
  const submit = $("enroll-submit");
  showError(error, null);
  const common = {
    device_name: $("enroll-name").value,
    pin: $("enroll-pin").value,
    pin_repeat: $("enroll-pin2").value,
  };
  const input = $("enroll-input").value.trim();
  if (!input && !qrImage) {
    showError(error, "Paste the activation code or link, or open a QR code image.");
    $("enroll-input").focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "Adding…";
  try {
    const account = input
      ? await invoke("enroll", { ...common, input, issuer: $("enroll-issuer").value || null })
      : await invoke("enroll_from_qr", { ...common, image_base64: qrImage });
    $("enroll-form").reset();
    qrImage = null;
    $("enroll-qr-note").hidden = true;
    await refreshAccounts();
    banner(`Added ${account.username} at ${hostOf(account.issuer)}. Requests will appear here.`);
    show("requests");
  } catch (err) {
    showError(error, err);
    if (err && (err.code === "pin_mismatch" || err.code === "invalid_pin")) {
      $("enroll-pin").value = "";
      $("enroll-pin2").value = "";
      $("enroll-pin").focus();
    }
  } finally {
    submit.disabled = false;
    submit.textContent = "Add account";
  }
});

function openLink(link) {
  show("enroll");
  $("enroll-input").value = link;
  banner("Enrollment link received. Choose a PIN to add the account.");
  $("enroll-pin").focus();
}

// ---------- request cards ----------

function firstCard() {
  return document.querySelector("#cards .card");
}

function renderEmpty() {
  const count = state.cards.size;
  $("no-requests").hidden = count > 0;
  const badge = $("pending-badge");
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} pending`);
  document.title = count ? `(${count}) Outband Authenticator` : "Outband Authenticator";
}

function addCard(card) {
  if (state.cards.has(card.id)) return;
  const element = buildCard(card);
  // Oldest deadline first.
  const after = [...state.cards.values()].find((c) => c.card.expires_at > card.expires_at);
  $("cards").insertBefore(element, after ? after.element : null);
  // Counted on this machine's clock from what Rust says is left: the server's clock may differ.
  const deadline = nowSeconds() + card.seconds_left;
  state.cards.set(card.id, { card, element, deadline });
  tick();
  renderEmpty();
}

function removeCard(id, reason) {
  const entry = state.cards.get(id);
  if (!entry) return;
  const hadFocus = entry.element.contains(document.activeElement);
  entry.element.remove();
  state.cards.delete(id);
  renderEmpty();
  if (reason && reason !== "decided") {
    const why = { withdrawn: "was cancelled", expired: "has expired", no_longer_pending: "is no longer pending", account_gone: "was removed" }[reason] || "went away";
    banner(`The request from ${clientName(entry.card)} ${why}.`);
  }
  if (hadFocus) {
    const next = firstCard();
    if (next) next.querySelector(".pin-input").focus();
    else $("main").focus();
  }
}

function clientName(card) {
  return card.client_name || card.client_id;
}

function buildCard(card) {
  const element = $("card-template").content.firstElementChild.cloneNode(true);
  const q = (selector) => element.querySelector(selector);
  const key = `card-${card.id.replace(/[^A-Za-z0-9_-]/g, "")}`;
  element.dataset.id = card.id;
  element.id = key;
  element.setAttribute("aria-labelledby", `${key}-title`);
  q(".card-title").id = `${key}-title`;

  const payment = card.payment;
  q(".client-name").textContent = clientName(card);
  q(".card-ask").textContent = payment ? "wants you to approve a payment" : "asks you to confirm it is you";
  q(".card-account").textContent = card.username ? `for ${card.username} at ${hostOf(card.issuer)}` : "";

  if (payment) {
    const amount = q(".amount");
    amount.textContent = card.display_amount || `${payment.currency} ${payment.amount}`;
    amount.hidden = false;
    if (payment.creditor_name || payment.creditor_iban) {
      q(".payee").hidden = false;
      q(".payee-name").textContent = payment.creditor_name || "";
      q(".iban").textContent = payment.creditor_iban ? formatIban(payment.creditor_iban) : "";
    }
    if (payment.remittance) {
      const remittance = q(".remittance");
      remittance.textContent = `for “${payment.remittance}”`;
      remittance.hidden = false;
    }
  }
  if (card.binding_message) {
    q(".binding").hidden = false;
    q(".binding-message").textContent = card.binding_message;
  }
  if (card.scope) {
    const scope = q(".scope");
    scope.textContent = `Access asked: ${card.scope.split(/\s+/).filter(Boolean).join(", ")}`;
    scope.hidden = false;
  }

  const pin = q(".pin-input");
  pin.id = `${key}-pin`;
  q(".pin-label").htmlFor = pin.id;
  const error = q(".error");
  error.id = `${key}-error`;
  pin.setAttribute("aria-describedby", error.id);
  const number = q(".number-input");
  number.id = `${key}-number`;
  q(".number-label").htmlFor = number.id;
  if (card.number_matching) {
    q(".number-field").hidden = false;
  }

  q(".decide").addEventListener("submit", (event) => {
    event.preventDefault();
    approve(card.id);
  });
  q(".deny").addEventListener("click", () => askDeny(card.id, false));
  q(".fraud").addEventListener("click", () => askDeny(card.id, true));
  return element;
}

function cardParts(id) {
  const entry = state.cards.get(id);
  if (!entry) return null;
  const q = (selector) => entry.element.querySelector(selector);
  return { entry, pin: q(".pin-input"), number: q(".number-input"), error: q(".error"), approve: q(".approve"), deny: q(".deny"), fraud: q(".fraud") };
}

function setBusy(parts, busy) {
  for (const button of [parts.approve, parts.deny, parts.fraud]) button.disabled = busy;
  if (!busy) tick();
}

async function approve(id) {
  const parts = cardParts(id);
  if (!parts) return;
  if (parts.entry.deadline <= nowSeconds()) {
    showError(parts.error, { code: "request_expired" });
    return;
  }
  if (!parts.pin.value) {
    showError(parts.error, { code: "pin_required" });
    parts.pin.setAttribute("aria-invalid", "true");
    parts.pin.focus();
    return;
  }
  if (parts.entry.card.number_matching && !parts.number.value.trim()) {
    showError(parts.error, { code: "number_match_required" });
    parts.number.focus();
    return;
  }
  showError(parts.error, null);
  setBusy(parts, true);
  parts.approve.textContent = "Approving…";
  try {
    await invoke("approve", {
      id,
      pin: parts.pin.value,
      number_match: parts.entry.card.number_matching ? parts.number.value : null,
    });
    const card = parts.entry.card;
    removeCard(id, "decided");
    const what = card.display_amount ? ` ${card.display_amount}` : "";
    banner(`Approved${what} for ${clientName(card)}.`, "success");
    announce(`Approved${what} for ${clientName(card)}.`);
  } catch (err) {
    showError(parts.error, err);
    parts.pin.value = "";
    parts.pin.setAttribute("aria-invalid", "true");
    parts.pin.focus();
  } finally {
    parts.approve.textContent = "Approve";
    if (state.cards.has(id)) setBusy(parts, false);
  }
}

function askDeny(id, fraud) {
  const parts = cardParts(id);
  if (!parts) return;
  const card = parts.entry.card;
  state.pendingDeny = { id, fraud };
  $("confirm-title").textContent = fraud ? "Report this request as fraud?" : "Deny this request?";
  $("confirm-text").textContent = fraud
    ? `${clientName(card)} will be refused and your bank told that you did not start this.`
    : `${clientName(card)} will be told that you refused${card.display_amount ? ` the payment of ${card.display_amount}` : ""}.`;
  $("confirm-ok").textContent = fraud ? "Deny and report" : "Deny";
  $("confirm-dialog").returnValue = "";
  $("confirm-dialog").showModal();
  $("confirm-cancel").focus();
}

$("confirm-dialog").addEventListener("close", async () => {
  const pending = state.pendingDeny;
  state.pendingDeny = null;
  if (!pending) return;
  const parts = cardParts(pending.id);
  if (!parts) return;
  if ($("confirm-dialog").returnValue !== "confirm") {
    parts.pin.focus();
    return;
  }
  setBusy(parts, true);
  try {
    await invoke("deny", { id: pending.id, fraud: pending.fraud });
    const card = parts.entry.card;
    removeCard(pending.id, "decided");
    const text = pending.fraud ? `Denied and reported ${clientName(card)}.` : `Denied ${clientName(card)}.`;
    banner(text);
    announce(text);
  } catch (err) {
    showError(parts.error, err);
    if (state.cards.has(pending.id)) setBusy(parts, false);
  }
});

// The countdown: every second, and approve is disabled once time is up.
function tick() {
  const now = nowSeconds();
  for (const { element, deadline } of state.cards.values()) {
    const left = deadline - now;
    const countdown = element.querySelector(".countdown");
    const text = left > 0 ? clock(left) : "0:00";
    if (countdown.textContent !== text) countdown.textContent = text;
    element.classList.toggle("urgent", left > 0 && left <= 30);
    const expired = left <= 0;
    element.classList.toggle("expired", expired);
    const approveButton = element.querySelector(".approve");
    if (expired && !approveButton.disabled) {
      approveButton.disabled = true;
      element.querySelector(".pin-input").disabled = true;
      element.querySelector(".expires").firstChild.textContent = "expired ";
    }
  }
}
setInterval(tick, 1000);

// Esc or D on a request asks to deny it (the focused card, else the first one).
document.addEventListener("keydown", (event) => {
  if (state.view !== "requests" || $("confirm-dialog").open) return;
  const typing = event.target.matches("input, textarea");
  const isD = (event.key === "d" || event.key === "D") && !typing && !event.ctrlKey && !event.metaKey && !event.altKey;
  if (event.key !== "Escape" && !isD) return;
  const card = event.target.closest(".card") || firstCard();
  if (!card) return;
  event.preventDefault();
  askDeny(card.dataset.id, false);
});

// ---------- access (grants) ----------

async function loadGrants() {
  let grants = [];
  try {
    grants = await invoke("list_grants");
  } catch (err) {
    banner(errorText(err), "error");
  }
  const list = $("grant-list");
  list.textContent = "";
  $("no-grants").hidden = grants.length > 0;
  for (const grant of grants) {
    const item = document.createElement("li");
    item.className = "grant";
    item.dataset.grantId = grant.grant_id;
    const title = document.createElement("h2");
    title.textContent = grant.client_name;
    const lines = document.createElement("ul");
    for (const line of grant.description) {
      const li = document.createElement("li");
      li.textContent = line;
      lines.append(li);
    }
    const since = document.createElement("p");
    since.className = "hint";
    since.textContent = `Since ${when(grant.created_at)}`;
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "remove";
    revoke.textContent = `Revoke access of ${grant.client_name}`;
    revoke.addEventListener("click", async () => {
      if (!window.confirm(`Revoke the access of ${grant.client_name}? Its tokens stop working at once.`)) return;
      try {
        await invoke("revoke_grant", { account: grant.account, grant_id: grant.grant_id });
        announce(`Access of ${grant.client_name} revoked`);
      } catch (err) {
        banner(errorText(err), "error");
      }
      loadGrants();
    });
    item.append(title, lines, since, revoke);
    list.append(item);
  }
}

// ---------- history ----------

const DECISION_TEXT = { approve: "Approved", deny: "Denied", deny_fraud: "Reported as fraud" };

async function loadHistory() {
  let entries = [];
  try {
    entries = await invoke("history");
  } catch (err) {
    banner(errorText(err), "error");
  }
  const rows = $("history-rows");
  rows.textContent = "";
  $("no-history").hidden = entries.length > 0;
  $("history-table").hidden = entries.length === 0;
  for (const entry of entries) {
    const tr = document.createElement("tr");
    const at = document.createElement("td");
    at.textContent = when(entry.at);
    const what = document.createElement("td");
    const parts = [entry.client_name || "A client"];
    if (entry.payment) parts.push(`${entry.payment.currency} ${entry.payment.amount}${entry.payment.creditor_name ? ` to ${entry.payment.creditor_name}` : ""}`);
    if (entry.binding_message) parts.push(`code ${entry.binding_message}`);
    what.textContent = parts.join(" · ");
    const decision = document.createElement("td");
    decision.textContent = DECISION_TEXT[entry.decision] || entry.decision;
    if (entry.outcome && !["approved", "denied"].includes(entry.outcome)) {
      decision.textContent += ` (${entry.outcome})`;
    }
    tr.append(at, what, decision);
    rows.append(tr);
  }
}

// ---------- settings ----------

async function loadSettings() {
  try {
    state.settings = await invoke("get_settings");
    $("setting-autostart").checked = state.settings.start_at_login;
    $("setting-notifications").checked = state.settings.notifications;
  } catch (err) {
    $("settings-status").textContent = errorText(err);
  }
}

$("settings-form").addEventListener("change", async () => {
  const wanted = {
    start_at_login: $("setting-autostart").checked,
    notifications: $("setting-notifications").checked,
  };
  try {
    state.settings = await invoke("set_settings", { settings: wanted });
    $("settings-status").textContent = "Saved.";
  } catch (err) {
    $("settings-status").textContent = errorText(err);
  }
  $("setting-autostart").checked = state.settings.start_at_login;
  $("setting-notifications").checked = state.settings.notifications;
});

// ---------- events from Rust ----------

async function onEvent({ payload }) {
  switch (payload.event) {
    case "request": {
      const card = payload.card;
      addCard(card);
      announce(`New request from ${clientName(card)}${card.display_amount ? `: ${card.display_amount}` : ""}. Code on the till: ${card.binding_message || "none"}.`);
      const typing = document.activeElement && document.activeElement.matches("input, textarea");
      if (state.view !== "requests" && state.view !== "enroll") show("requests", { focus: false });
      if (!typing && state.view === "requests") state.cards.get(card.id).element.querySelector(".pin-input").focus();
      break;
    }
    case "removed":
      removeCard(payload.id, payload.reason);
      break;
    case "status": {
      const account = state.accounts.find((a) => a.id === payload.account);
      if (account) {
        account.status = payload.status;
        if (state.view === "accounts") renderAccounts();
        renderLockedHint();
      } else {
        await refreshAccounts();
      }
      if (payload.status.state === "revoked") banner("A device was revoked at the server. See Accounts.", "error");
      break;
    }
    case "rejected":
      banner("A request failed verification and was not shown. Someone may be interfering.", "error");
      break;
    case "link":
      await invoke("take_link");
      openLink(payload.link);
      break;
  }
}

// ---------- start ----------

async function boot() {
  await listen(EVENT, onEvent);
  await refreshAccounts();
  for (const card of await invoke("list_requests")) addCard(card);
  renderEmpty();
  const link = await invoke("take_link");
  if (link) {
    openLink(link);
  } else if (state.accounts.length === 0) {
    show("enroll");
  } else if (state.accounts.every((a) => a.status.state === "locked")) {
    show("unlock");
  } else {
    show("requests");
  }
  document.body.dataset.ready = "true";
}

boot().catch((err) => banner(`The app could not start: ${errorText(err)}`, "error"));
