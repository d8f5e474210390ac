// pipe admin page. Plain JavaScript, no build step. Everything shown comes
// from the JSON API and is inserted as text (never as HTML).
'use strict';

const STORE = 'pipe-admin:selection';
const $ = (id) => document.getElementById(id);

let building = false;
let currentBuild = null;
// Until the first status arrives the page shows "Loading…" and Generate
// stays disabled: a button that works before we know whether a build runs
// would only be refused.
let loaded = false;

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
    rows.push(el('tr', { 'data-model': m.id },
      el('td', { class: 'nowrap' }, el('span', { class: 'name' }, m.name),
        m.default ? el('span', { class: 'badge default' }, 'default') : null,
        el('span', { class: 'id' }, m.id)),
      el('td', { class: 'num' }, m.dimensions),
      el('td', { class: 'storage' }, storageText(m)),
      el('td', {}, m.description || '—'),
      el('td', { class: 'nowrap' }, ...embeddingsCell(m))));
  }
  $('models').replaceChildren(...rows);
  select.value = modelsById[chosen] ? chosen : '';
  describeModel();
}

// How the model's vector table stores vectors.
function storageText(m) {
  const q = m.quantization;
  if (!q) return 'float32';
  return q.rescore ? `${q.kind}, rescored (${q.oversample}× candidates)` : `${q.kind} only`;
}

// The embeddings column: how many movies will have a vector (kept movies
// with a row in the file), and the file's own row count when it differs.
function embeddingsCell(m) {
  const file = el('span', { class: 'id' }, m.embeddings);
  if (!m.embeddingsPresent) return [el('span', { class: 'badge missing' }, 'file missing'), file];
  if (m.embeddingsRows === null) {
    return [el('span', { class: 'badge missing', title: m.embeddingsError || '' }, 'unreadable'), file];
  }
  const out = [];
  if (m.vectors === null) {
    out.push(el('span', { class: 'badge stale', title: m.embeddingsError || '' }, `${m.embeddingsRows.toLocaleString()} rows`));
  } else {
    out.push(el('span', { class: 'badge present', title: 'movies that will have a vector in this model\'s database' },
      `${m.vectors.toLocaleString()} vectors`));
    if (m.embeddingsRows !== m.vectors) {
      out.push(el('span', { class: 'id' }, `of ${m.embeddingsRows.toLocaleString()} rows in the file`));
    }
  }
  out.push(file);
  return out;
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
  'never-built': 'never built',
  stale: 'stale',
  'missing-input': 'missing input',
  failed: 'failed',
  building: 'building',
};

async function loadStatus() {
  const { ok, body } = await api('/api/status');
  if (!ok) {
    showProblem(problemText(body));
    if (!loaded) $('message').textContent = 'Cannot read the state of the project (see above).';
    return;
  }
  showProblem('');
  $('root').textContent = body.root;
  const rows = body.targets.map((t) => {
    const details = [];
    if (t.state === 'failed' && t.lastError) details.push(el('li', { class: 'error' }, `last error: ${t.lastError}`));
    for (const p of t.missingInputs) details.push(el('li', { class: 'error' }, `missing: ${p}`));
    // "never built" is the state itself; other reasons say why it is stale.
    if (t.state !== 'building') for (const r of t.reasons) if (!(t.state === 'never-built' && r === 'never built')) details.push(el('li', {}, r));
    return el('tr', { 'data-target': t.name },
      el('td', {}, el('span', { class: 'name' }, t.name), t.description ? el('span', { class: 'id' }, t.description) : null),
      el('td', {}, el('span', { class: `badge ${t.state}` }, STATE_LABEL[t.state] || t.state)),
      el('td', { class: 'details' }, details.length ? el('ul', {}, ...details) : '—'));
  });
  $('targets').replaceChildren(...rows);
  const first = !loaded;
  if (first) {
    loaded = true;
    $('main').removeAttribute('aria-busy');
  }
  if (body.build) {
    setBuilding(true, body.build.id);
    syncLines(body.build.building || []);
    showProgress(body.build.unitsCurrent, body.build.unitsTotal, null, body.build.message || 'Building…');
  } else {
    if (building || first) setBuilding(false);
    clearLines();
    if (body.last && !$('result').dataset.id) showResult(body.last);
    else if (first && !body.last) $('message').textContent = 'Idle.';
  }
}

function problemText(body) {
  const each = Array.isArray(body.diagnostics) ? body.diagnostics : [body.diagnostic];
  return [body.error || 'The server did not answer.', ...each].filter(Boolean).join('\n\n');
}

// --- a build ----------------------------------------------------------------
function setBuilding(on, id) {
  building = on;
  currentBuild = on ? id : null;
  const button = $('generate');
  button.disabled = on || !loaded;
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

// --- one line per running target ---------------------------------------------
const lines = new Map();

function lineOf(name) {
  let li = lines.get(name);
  if (!li) {
    li = el('li', { 'data-target': name },
      el('span', { class: 'name' }, name),
      el('progress', { max: '100', 'aria-label': `${name} progress` }),
      el('span', { class: 'line' }, 'building…'));
    lines.set(name, li);
    $('running').append(li);
    $('running').hidden = false;
  }
  return li;
}

function updateLine(name, message, current, total) {
  const li = lineOf(name);
  if (message) li.querySelector('.line').textContent = message;
  const bar = li.querySelector('progress');
  if (total > 0) bar.value = Math.min(100, Math.round((current / total) * 100));
}

function endLine(name) {
  const li = lines.get(name);
  if (li) li.remove();
  lines.delete(name);
  $('running').hidden = lines.size === 0;
}

function clearLines() {
  for (const name of [...lines.keys()]) endLine(name);
}

// After a reload mid-build: the targets the server says are building.
function syncLines(names) {
  for (const name of [...lines.keys()]) if (!names.includes(name)) endLine(name);
  for (const name of names) lineOf(name);
}

// --- warnings ---------------------------------------------------------------
function setWarnings(items) {
  const seen = new Set();
  const lis = [];
  for (const { target, text } of items) {
    const key = `${target}\u0000${text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lis.push(el('li', { class: 'warning' }, target ? el('span', { class: 'name' }, `${target}: `) : null, text));
  }
  $('warning-list').replaceChildren(...lis);
  $('warnings').hidden = lis.length === 0;
  return lis.length;
}

let liveWarnings = [];
function addWarning(target, text) {
  liveWarnings.push({ target, text });
  setWarnings(liveWarnings);
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
  const warnings = [];
  for (const r of event.results || []) for (const w of r.warnings || []) warnings.push({ target: r.name, text: w });
  const count = setWarnings(warnings);
  const ok = event.status === 'completed';
  box.className = `result ${ok ? (count ? 'warn' : 'ok') : 'bad'}`;
  const also = count ? ` (${count} warning${count === 1 ? '' : 's'}, below)` : '';
  $('result-title').textContent = ok
    ? `Build ${event.id} completed${count ? ' with warnings' : ''}: ${event.message}${also}`
    : `Build ${event.id} failed: ${event.message}${also}`;
  $('result-list').replaceChildren(...(event.results || []).map((r) => {
    const n = (r.warnings || []).length;
    return el('li', { 'data-status': r.status }, outcomeText(r),
      n ? el('span', { class: 'badge warning' }, `${n} warning${n === 1 ? '' : 's'}`) : null);
  }));
  box.hidden = false;
  clearLines();
  $('bar').value = ok ? 100 : $('bar').value;
  $('message').textContent = ok ? `Completed: ${event.message}` : `Error: ${event.message}`;
}

let refreshTimer = null;
function refreshSoon() {
  // Progress events come quickly; re-read the target table at most 2×/s.
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadStatus(); }, 500);
}

// A line without the target's name in front (the line already shows it).
function lineText(event) {
  const prefix = `${event.target}: `;
  return event.message.startsWith(prefix) ? event.message.slice(prefix.length) : event.message;
}

function onEvent(event) {
  if (event.type !== 'build') return;
  switch (event.status) {
    case 'starting':
      setBuilding(true, event.id);
      $('result').hidden = true;
      liveWarnings = [];
      setWarnings([]);
      clearLines();
      $('bar').value = 0;
      $('message').textContent = event.message;
      break;
    case 'in_progress': {
      if (!building) setBuilding(true, event.id);
      if (event.target) {
        switch (event.targetState) {
          case 'started': updateLine(event.target, 'starting…', 0, 0); break;
          case 'running': updateLine(event.target, lineText(event), event.targetCurrent, event.targetTotal); break;
          case 'warning': addWarning(event.target, event.warning); break;
          case 'finished': endLine(event.target); break;
          default: break;
        }
        const running = lines.size ? `, ${lines.size} building` : '';
        // The bar counts work units (files, rows, texts) over every target,
        // as the command line's does; the text counts targets.
        showProgress(event.unitsCurrent, event.unitsTotal, null,
          event.total ? `Building: ${event.current} of ${event.total} target(s) done${running}` : event.message);
        refreshSoon();
      } else {
        showProgress(event.unitsCurrent, event.unitsTotal, null, event.message);
      }
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
