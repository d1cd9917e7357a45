// Blackhole console: pick a protocol, subscribe, watch the events arrive.
// Plain ES2020 module, no framework, no bundler. Every piece of server data reaches the page as
// text nodes (textContent, createTextNode), never as HTML.
import { KAZOO3_EVENTS, accountOf, familyOf, summarize } from './kazoo-events.js';
import {
  PROTOCOLS,
  canLoadClient,
  loadClient,
  openKazooWebSocket,
  openSocketIo09,
  openSocketIo4,
} from './protocols.js';

/** Rows kept in the list (oldest go first), and events kept while paused. */
const MAX_ROWS = 500;
const DEFAULT_BINDINGS = ['call.*.*', 'conference.event.*', 'fax.status.*', 'object.*.*'];
/** Carries the form across the reload that swaps socket.io generations; read once, then removed. */
const PENDING_KEY = 'blackhole-console:pending';

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('connect-form'),
  fields: $('connect-fields'),
  accountId: $('account-id'),
  authToken: $('auth-token'),
  toggleToken: $('toggle-token'),
  bindings: $('bindings'),
  protocol: $('protocol'),
  formError: $('form-error'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  state: $('state'),
  stateText: $('state-text'),
  protocolLabel: $('protocol-label'),
  filter: $('filter'),
  counter: $('counter'),
  pause: $('pause'),
  clear: $('clear'),
  empty: $('empty'),
  events: $('events'),
};

let connection = null;
let connectionId = 0;
/** The token in use, blanked out of anything the stream shows. */
let secret = '';
let filterText = '';
let paused = false;
let buffered = [];
let bufferedCount = 0;
/** Lower-cased text each row is filtered on. */
const searchText = new WeakMap();

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function redact(text) {
  const value = String(text);
  return secret.length >= 4 && value.includes(secret) ? value.split(secret).join('••••••') : value;
}

function pad(value, width = 2) {
  return String(value).padStart(width, '0');
}

function formatTime(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function shortId(id) {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

/** Pretty-printed, colored JSON as DOM nodes (keys, strings, numbers, literals in spans). */
function renderJson(value, indent = '') {
  const fragment = document.createDocumentFragment();
  const text = (t) => fragment.append(document.createTextNode(t));
  const span = (className, t) => fragment.append(el('span', className, t));

  if (value === null || value === undefined) span('j-null', 'null');
  else if (typeof value === 'string') span('j-str', JSON.stringify(redact(value)));
  else if (typeof value === 'number') span('j-num', String(value));
  else if (typeof value === 'boolean') span('j-bool', String(value));
  else if (Array.isArray(value)) {
    if (value.length === 0) text('[]');
    else {
      text('[\n');
      value.forEach((item, index) => {
        text(`${indent}  `);
        fragment.append(renderJson(item, `${indent}  `));
        text(index < value.length - 1 ? ',\n' : '\n');
      });
      text(`${indent}]`);
    }
  } else if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) text('{}');
    else {
      text('{\n');
      keys.forEach((key, index) => {
        text(`${indent}  `);
        span('j-key', JSON.stringify(key));
        text(': ');
        fragment.append(renderJson(value[key], `${indent}  `));
        text(index < keys.length - 1 ? ',\n' : '\n');
      });
      text(`${indent}}`);
    }
  } else span('j-str', JSON.stringify(String(value)));
  return fragment;
}

// ---------------------------------------------------------------------------------------------
// The stream

function record(entry) {
  if (paused) {
    buffered.push(entry);
    if (buffered.length > MAX_ROWS) buffered.shift();
    bufferedCount += 1;
    updatePause();
    return;
  }
  render(entry);
  updateCounter();
}

function render(entry) {
  const li = el('li', `row row--${entry.kind} fam-${entry.family}`);
  li.dataset.kind = entry.kind;
  li.dataset.name = entry.name;

  const expandable = entry.payload !== undefined;
  const head = el(expandable ? 'button' : 'div', 'row__head');
  if (expandable) {
    head.type = 'button';
    head.setAttribute('aria-expanded', 'false');
  }

  const time = el('time', 'row__time', formatTime(entry.time));
  time.dateTime = entry.time.toISOString();

  const scope = el('span', 'row__scope');
  if (entry.account) {
    const account = el('span', 'row__account', shortId(entry.account));
    account.title = entry.account;
    scope.append(account);
  }
  if (entry.binding) scope.append(el('span', 'row__binding', entry.binding));

  const summary = el('span', 'row__summary', redact(entry.summary || ''));
  summary.title = summary.textContent;
  head.append(time, el('span', 'row__name', entry.name), scope, summary);
  if (expandable) head.append(el('span', 'row__chevron'));
  li.append(head);

  if (expandable) {
    head.addEventListener('click', () => toggle(li, head, entry));
  }

  searchText.set(
    li,
    redact(
      [entry.name, entry.summary, entry.account, entry.binding, entry.json]
        .filter(Boolean)
        .join('\n'),
    ).toLowerCase(),
  );
  li.hidden = !matches(li);

  ui.events.prepend(li);
  while (ui.events.childElementCount > MAX_ROWS) ui.events.lastElementChild.remove();
}

function toggle(li, head, entry) {
  let body = li.querySelector('.row__body');
  if (!body) {
    body = el('div', 'row__body');
    if (entry.meta && entry.meta.length > 0) {
      const meta = el('dl', 'row__meta');
      for (const [label, value] of entry.meta) {
        meta.append(el('dt', '', label), el('dd', '', redact(value)));
      }
      body.append(meta);
    }
    const copy = el('button', 'button button--small button--ghost row__copy', 'Copy JSON');
    copy.type = 'button';
    copy.addEventListener('click', () => {
      const done = (label) => {
        copy.textContent = label;
        setTimeout(() => (copy.textContent = 'Copy JSON'), 1500);
      };
      if (!navigator.clipboard) return done('Copy unavailable');
      navigator.clipboard.writeText(redact(JSON.stringify(entry.payload, null, 2))).then(
        () => done('Copied'),
        () => done('Copy failed'),
      );
    });
    const pre = el('pre', 'json');
    pre.append(renderJson(entry.payload));
    body.append(copy, pre);
    li.append(body);
    body.hidden = true;
  }
  const open = body.hidden;
  body.hidden = !open;
  li.classList.toggle('is-open', open);
  head.setAttribute('aria-expanded', String(open));
}

function matches(li) {
  return filterText === '' || (searchText.get(li) || '').includes(filterText);
}

function applyFilter() {
  filterText = ui.filter.value.trim().toLowerCase();
  for (const li of ui.events.children) li.hidden = !matches(li);
  updateCounter();
}

function updateCounter() {
  const rows = ui.events.children;
  let events = 0;
  let shown = 0;
  for (const li of rows) {
    if (li.dataset.kind === 'event') events += 1;
    if (!li.hidden) shown += 1;
  }
  const noun = events === 1 ? 'event' : 'events';
  ui.counter.textContent =
    filterText === '' ? `${events} ${noun}` : `${shown} of ${rows.length} rows match`;
  ui.empty.hidden = shown > 0;
  ui.empty.textContent =
    rows.length > 0
      ? 'Nothing matches the filter.'
      : 'No events yet. Connect, then place a call, start a conference or edit a document.';
}

function updatePause() {
  ui.pause.textContent = paused ? `Resume (${bufferedCount})` : 'Pause';
  ui.pause.setAttribute('aria-pressed', String(paused));
  ui.pause.classList.toggle('button--active', paused);
  document.body.classList.toggle('is-paused', paused);
}

function setPaused(value) {
  paused = value;
  if (!paused) {
    for (const entry of buffered) render(entry);
    buffered = [];
    bufferedCount = 0;
    updateCounter();
  }
  updatePause();
}

function clearStream() {
  ui.events.replaceChildren();
  buffered = [];
  bufferedCount = 0;
  updatePause();
  updateCounter();
}

function eventEntry({ name, payload, binding, routingKey, frame }, config) {
  const family = familyOf(name, payload, binding);
  const account = accountOf(payload) || config.accountId;
  const meta = [['account', account]];
  if (binding) meta.push(['binding', binding]);
  if (routingKey) meta.push(['routing key', routingKey]);
  const shown = frame || payload;
  return {
    kind: 'event',
    time: new Date(),
    name,
    family,
    account,
    binding,
    summary: summarize(family, payload),
    payload: shown,
    json: JSON.stringify(shown),
    meta,
  };
}

function noticeEntry(kind, name, message, payload) {
  return {
    kind,
    time: new Date(),
    name,
    family: kind,
    summary: message,
    payload,
    json: payload === undefined ? '' : JSON.stringify(payload),
    meta: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Connection

function setState(state) {
  ui.state.dataset.state = state;
  ui.stateText.textContent = state;
}

function setBusy(busy) {
  ui.fields.disabled = busy;
  ui.connect.disabled = busy;
  ui.disconnect.disabled = !busy;
}

function showFormError(message) {
  ui.formError.textContent = message;
  ui.formError.hidden = !message;
}

function readConfig() {
  const bindings = [
    ...new Set(
      ui.bindings.value
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
    ),
  ];
  const config = {
    accountId: ui.accountId.value.trim(),
    authToken: ui.authToken.value.trim(),
    bindings,
    protocol: ui.protocol.value,
  };
  if (!config.accountId) return showFormError('Enter the account id to watch.');
  if (!config.authToken) return showFormError('Enter an auth token.');
  if (bindings.length === 0) return showFormError('Enter at least one binding.');
  showFormError('');
  return config;
}

/** The callbacks a protocol reports through; those of a closed connection are ignored. */
function reporter(id, config) {
  const live = () => id === connectionId;
  return {
    state(state) {
      if (live()) setState(state);
    },
    event(event) {
      if (live()) record(eventEntry(event, config));
    },
    error(name, message, payload) {
      if (live()) record(noticeEntry('error', name, message, payload));
    },
    info(message, payload) {
      if (live()) record(noticeEntry('info', 'info', message, payload));
    },
    closed() {
      if (!live()) return;
      connection = null;
      connectionId += 1;
      setBusy(false);
    },
  };
}

async function connect() {
  const config = readConfig();
  if (!config) return;
  const protocol = PROTOCOLS[config.protocol];
  if (!canLoadClient(protocol.client)) return reloadFor(config);

  disconnect();
  const id = ++connectionId;
  const report = reporter(id, config);
  secret = config.authToken;
  setBusy(true);
  setState('connecting');
  ui.protocolLabel.textContent = protocol.label;
  report.info(`connecting to ${location.host} with ${protocol.label}`);

  try {
    let opened;
    if (config.protocol === 'kazoo-ws') opened = openKazooWebSocket(config, report);
    else {
      const io = await loadClient(protocol.client);
      if (id !== connectionId) return;
      opened =
        config.protocol === 'socketio4'
          ? openSocketIo4(io, config, report)
          : openSocketIo09(io, config, report);
    }
    if (id === connectionId) connection = opened;
    else opened.close();
  } catch (error) {
    report.state('error');
    report.error('client', error instanceof Error ? error.message : String(error));
    report.closed();
  }
}

function disconnect() {
  const current = connection;
  connection = null;
  connectionId += 1;
  if (current) current.close();
  setState('disconnected');
  setBusy(false);
}

/** Swaps socket.io generations: both clients own the global `io`, so start from a fresh page. */
function reloadFor(config) {
  const url = new URL(location.href);
  url.searchParams.set('protocol', config.protocol);
  url.searchParams.delete('auth_token');
  try {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ ...config, connect: true }));
  } catch (_) {
    showFormError('Reloading to switch clients: enter the token again afterwards.');
  }
  location.assign(url.toString());
}

function restoreForm() {
  const params = new URLSearchParams(location.search);
  ui.accountId.value = params.get('account_id') || '';
  ui.authToken.value = params.get('auth_token') || '';
  const bindings = params.getAll('bindings').flatMap((value) => value.split(/[\n,]/));
  ui.bindings.value = (bindings.length > 0 ? bindings : DEFAULT_BINDINGS).join('\n');
  if (PROTOCOLS[params.get('protocol')]) ui.protocol.value = params.get('protocol');

  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
    sessionStorage.removeItem(PENDING_KEY);
  } catch (_) {
    pending = null;
  }
  if (pending && typeof pending === 'object') {
    ui.accountId.value = String(pending.accountId || ui.accountId.value);
    ui.authToken.value = String(pending.authToken || '');
    if (Array.isArray(pending.bindings)) ui.bindings.value = pending.bindings.join('\n');
    if (PROTOCOLS[pending.protocol]) ui.protocol.value = pending.protocol;
  }

  // The token is now in the form: take it out of the address bar and of this history entry.
  if (params.has('auth_token')) {
    const url = new URL(location.href);
    url.searchParams.delete('auth_token');
    history.replaceState(history.state, '', url.toString());
  }
  return Boolean(pending && pending.connect);
}

function suggestEventNames() {
  const list = el('datalist');
  list.id = 'event-names';
  for (const name of KAZOO3_EVENTS) {
    const option = el('option');
    option.value = name;
    list.append(option);
  }
  document.body.append(list);
  ui.filter.setAttribute('list', list.id);
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void connect();
});
ui.disconnect.addEventListener('click', () => {
  disconnect();
  record(noticeEntry('info', 'info', 'disconnected'));
});
ui.toggleToken.addEventListener('click', () => {
  const show = ui.authToken.type === 'password';
  ui.authToken.type = show ? 'text' : 'password';
  ui.toggleToken.textContent = show ? 'Hide' : 'Show';
  ui.toggleToken.setAttribute('aria-pressed', String(show));
});
ui.filter.addEventListener('input', applyFilter);
ui.filter.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') {
    ui.filter.value = '';
    applyFilter();
  }
});
ui.pause.addEventListener('click', () => setPaused(!paused));
ui.clear.addEventListener('click', clearStream);
window.addEventListener('pagehide', () => connection && connection.close());

suggestEventNames();
const resume = restoreForm();
updateCounter();
updatePause();
if (resume) void connect();
