// pipe admin page. Plain JavaScript, no build step. Everything shown comes
// from the JSON API and is inserted as text (never as HTML).
'use strict';

const STORE = 'pipe-admin:selection';
const $ = (id) => document.getElementById(id);

let building = false;
let currentBuild = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

async function api(url, options) {
  const response = await fetch(url, options);
  let body = {};
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  return { ok: response.ok, code: response.status, body };
}

// --- the selection survives a reload -------------------------------------
function loadSelection() {
  try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch (_) { return {}; }
}
function saveSelection() {
  const value = { model: $('model').value, skipJson: $('skip-json').checked };
  try { localStorage.setItem(STORE, JSON.stringify(value)); } catch (_) { /* private mode */ }
}

function showProblem(text) {
  const p = $('problem');
  p.textContent = text || '';
  p.hidden = !text;
}

// --- models ----------------------------------------------------------------
let modelsById = {};

async function loadModels() {
  const { ok, body } = await api('/api/models');
  if (!ok) { showProblem(problemText(body)); return; }
  const select = $('model');
  const saved = loadSelection();
  const chosen = select.options.length > 1 ? select.value : (saved.model || '');
  select.replaceChildren(el('option', { value: '' }, 'All models'));
  modelsById = {};
  const rows = [];
  for (const m of body.models) {
    modelsById[m.id] = m;
    select.append(el('option', { value: m.id }, `${m.name} (${m.id}) · ${m.dimensions} dims`));
    const embeddings = m.embeddingsPresent
      ? (m.vectors === null
        ? el('span', { class: 'badge missing', title: m.embeddingsError || '' }, 'unreadable')
        : el('span', { class: 'badge present' }, `${m.vectors.toLocaleString()} vectors`))
      : el('span', { class: 'badge missing' }, 'file missing');
    rows.push(el('tr', {},
      el('td', { class: 'nowrap' }, el('span', { class: 'name' }, m.name),
        m.default ? el('span', { class: 'badge default' }, 'default') : null,
        el('span', { class: 'id' }, m.id)),
      el('td', { class: 'num' }, m.dimensions),
      el('td', {}, m.description || '—'),
      el('td', { class: 'nowrap' }, embeddings, el('span', { class: 'id' }, m.embeddings))));
  }
  $('models').replaceChildren(...rows);
  select.value = modelsById[chosen] ? chosen : '';
  describeModel();
}

function describeModel() {
  const m = modelsById[$('model').value];
  const json = !$('skip-json').checked;
  const hint = $('model-hint');
  if (m) {
    // A model with a provider: its embeddings first (new and changed
    // records only), then its database.
    const embed = m.provider
      ? [el('code', {}, `embeddings@${m.id}`), ` (${m.provider}), then `]
      : [];
    hint.replaceChildren(`${m.description || m.name}. Builds `, ...embed, el('code', {}, `movies-db@${m.id}`),
      json ? ' and ' : '', json ? el('code', {}, 'movie-json') : '', '.');
  } else {
    hint.replaceChildren(`Builds every model's database${json ? ' and the JSON files' : ''}.`);
  }
}

// --- targets and the state of builds ----------------------------------------
const STATE_LABEL = {
  'up-to-date': 'up to date',
  stale: 'stale',
  'missing-input': 'missing input',
  failed: 'failed',
  building: 'building',
};

async function loadStatus() {
  const { ok, body } = await api('/api/status');
  if (!ok) { showProblem(problemText(body)); return; }
  showProblem('');
  $('root').textContent = body.root;
  const rows = body.targets.map((t) => {
    const details = [];
    if (t.state === 'failed' && t.lastError) details.push(el('li', { class: 'error' }, `last error: ${t.lastError}`));
    for (const p of t.missingInputs) details.push(el('li', { class: 'error' }, `missing: ${p}`));
    if (t.state !== 'building') for (const r of t.reasons) details.push(el('li', {}, r));
    return el('tr', { 'data-target': t.name },
      el('td', {}, el('span', { class: 'name' }, t.name), t.description ? el('span', { class: 'id' }, t.description) : null),
      el('td', {}, el('span', { class: `badge ${t.state}` }, STATE_LABEL[t.state] || t.state)),
      el('td', { class: 'details' }, details.length ? el('ul', {}, ...details) : '—'));
  });
  $('targets').replaceChildren(...rows);
  if (body.build) {
    setBuilding(true, body.build.id);
    showProgress(body.build.current, body.build.total, null, body.build.message || 'Building…');
  } else {
    setBuilding(false);
    if (body.last && !$('result').dataset.id) showResult(body.last);
  }
}

function problemText(body) {
  return [body.error || 'The server did not answer.', body.diagnostic].filter(Boolean).join('\n\n');
}

// --- a build ----------------------------------------------------------------
function setBuilding(on, id) {
  building = on;
  currentBuild = on ? id : null;
  const button = $('generate');
  button.disabled = on;
  button.setAttribute('aria-busy', on ? 'true' : 'false');
  button.textContent = on ? 'Building…' : 'Generate';
}

function showProgress(current, total, fraction, message) {
  const bar = $('bar');
  if (total > 0) {
    const inside = fraction === null ? 0 : Math.min(1, Math.max(0, fraction));
    bar.value = Math.min(100, Math.round(((current + inside) / total) * 100));
  }
  if (message) $('message').textContent = message;
}

function outcomeText(r) {
  const secs = (r.millis / 1000).toFixed(2);
  switch (r.status) {
    case 'built': return `${r.name}: built in ${secs}s (${r.written} written${r.deleted ? `, ${r.deleted} deleted` : ''})`;
    case 'up-to-date': return `${r.name}: skipped, up to date`;
    case 'failed': return `${r.name}: failed: ${r.error}`;
    case 'skipped': return `${r.name}: not built, ${r.because} failed`;
    case 'not-run': return `${r.name}: not run`;
    default: return `${r.name}: ${r.status}`;
  }
}

function showResult(event) {
  const box = $('result');
  box.dataset.id = String(event.id);
  box.className = `result ${event.status === 'completed' ? 'ok' : 'bad'}`;
  $('result-title').textContent = event.status === 'completed'
    ? `Build ${event.id} completed: ${event.message}`
    : `Build ${event.id} failed: ${event.message}`;
  $('result-list').replaceChildren(...(event.results || []).map((r) => {
    const li = el('li', { 'data-status': r.status }, outcomeText(r));
    for (const w of r.warnings || []) li.append(el('div', { class: 'muted' }, `warning: ${w}`));
    return li;
  }));
  box.hidden = false;
  $('bar').value = event.status === 'completed' ? 100 : $('bar').value;
  $('message').textContent = event.status === 'completed' ? `Completed: ${event.message}` : `Error: ${event.message}`;
}

let refreshTimer = null;
function refreshSoon() {
  // Progress events come quickly; re-read the target table at most 2×/s.
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadStatus(); }, 500);
}

function onEvent(event) {
  if (event.type !== 'build') return;
  switch (event.status) {
    case 'starting':
      setBuilding(true, event.id);
      $('result').hidden = true;
      $('bar').value = 0;
      $('message').textContent = event.message;
      break;
    case 'in_progress': {
      if (!building) setBuilding(true, event.id);
      const fraction = event.targetTotal ? event.targetCurrent / event.targetTotal : null;
      showProgress(event.current, event.total, fraction, event.message);
      if (event.target) refreshSoon();
      break;
    }
    case 'completed':
    case 'error':
      setBuilding(false);
      showResult(event);
      loadStatus();
      loadModels();
      break;
    default:
      break;
  }
}

function listen() {
  const source = new EventSource('/api/progress');
  source.onmessage = (m) => {
    try { onEvent(JSON.parse(m.data)); } catch (_) { /* ignore a malformed event */ }
  };
  // EventSource reconnects by itself; re-read the state when it does, in
  // case a build finished while we were away.
  source.onopen = () => loadStatus();
}

async function generate(e) {
  e.preventDefault();
  if (building) return;
  saveSelection();
  const model = $('model').value;
  const request = { skipJsonGeneration: $('skip-json').checked };
  if (model) request.embeddingModel = model;
  setBuilding(true, null);
  $('message').textContent = 'Starting…';
  const { code, body } = await api('/api/build', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  });
  if (code === 202 || code === 200) return; // the event stream takes over
  if (code === 409) {
    $('message').textContent = 'A build is already running.';
    return;
  }
  setBuilding(false);
  const extra = body.models ? ` Models: ${body.models.join(', ')}.` : '';
  $('message').textContent = `Error: ${body.error || `HTTP ${code}`}.${extra}`;
}

document.addEventListener('DOMContentLoaded', () => {
  const saved = loadSelection();
  $('skip-json').checked = Boolean(saved.skipJson);
  $('model').addEventListener('change', () => { saveSelection(); describeModel(); });
  $('skip-json').addEventListener('change', () => { saveSelection(); describeModel(); });
  $('build-form').addEventListener('submit', generate);
  loadModels().then(loadStatus);
  listen();
});
