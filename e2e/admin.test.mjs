// End-to-end test of the `pipe serve` admin page in a real headless browser:
// Debian's chromium driven by playwright-core (which never downloads a
// browser). Run by tests/e2e.rs:
//
//   node e2e/admin.test.mjs http://127.0.0.1:PORT SCREENSHOT_PATH
//
// It checks the loading state before the first status (the status request
// is held back), picks `potion`, ticks "Skip JSON files", presses Generate
// with the keyboard, follows the progress to completion (one line per
// running target), checks that only movies-db@potion was built, that its
// warning is shown as a warning, that the selection survives a reload, and
// saves a screenshot.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error('usage: node admin.test.mjs BASE_URL SCREENSHOT_PATH');
  process.exit(2);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'pipe-e2e-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  // launchPersistentContext passes --user-data-dir=<the fresh directory>.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1100, height: 1000 },
  colorScheme: 'light',
});

const problems = [];
const step = (what) => console.log(`e2e: ${what}`);

try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

  step(`open ${base}: a loading state until the first status`);
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/status', async (route) => { await held; await route.continue(); });
  await page.goto(base);
  await page.waitForSelector('#model option[value="potion"]', { state: 'attached' });
  assert.equal(await page.textContent('#message'), 'Loading…');
  assert.equal(await page.getAttribute('#main', 'aria-busy'), 'true');
  assert.equal(await page.isDisabled('#generate'), true, 'Generate must wait for the state');
  assert.match(await page.textContent('#targets'), /Loading targets/);
  release();
  await page.waitForSelector('#targets tr[data-target="movies-db@potion"]');
  await page.unroute('**/api/status');
  assert.equal(await page.getAttribute('#main', 'aria-busy'), null);
  assert.equal(await page.textContent('#message'), 'Idle.');
  assert.equal(await page.isDisabled('#generate'), false);
  // Never built is a state of its own, not "stale".
  assert.equal(await page.textContent('#targets tr[data-target="movies-db@potion"] .badge'), 'never built');
  assert.equal(await page.textContent('#targets tr[data-target="movies-db@potion"] td.details'), '—');

  // Models table: name, storage, and the vectors the database will hold
  // (the file's rows when they differ).
  const modelsText = await page.textContent('#models');
  assert.match(modelsText, /Potion Base 2M/);
  const api = await (await page.request.get(`${base}/api/models`)).json();
  const potion = api.models.find((m) => m.id === 'potion');
  assert.ok(potion.vectors < potion.embeddingsRows, JSON.stringify(potion));
  const potionRow = await page.textContent('#models tr[data-model="potion"]');
  assert.ok(potionRow.includes(`${potion.vectors.toLocaleString('en-US')} vectors`), potionRow);
  assert.ok(potionRow.includes(`of ${potion.embeddingsRows.toLocaleString('en-US')} rows in the file`), potionRow);
  assert.equal(await page.textContent('#models tr[data-model="potion"] td.storage'), 'float32');
  assert.equal(await page.textContent('#models tr[data-model="potion-int8"] td.storage'), 'int8, rescored (8× candidates)');

  step('pick potion, skip JSON');
  await page.selectOption('#model', 'potion');
  await page.check('#skip-json');
  // Labels: the controls are reachable by their visible names.
  assert.equal(await page.getByLabel('Embedding model').inputValue(), 'potion');
  assert.equal(await page.getByLabel('Skip JSON files').isChecked(), true);

  // Record whether the button ever shows that a build runs (it may be
  // quick), and the progress lines: one per running target, never two.
  await page.evaluate(() => {
    window.__sawBusy = false;
    window.__lines = new Set();
    window.__lineProblems = [];
    const b = document.getElementById('generate');
    new MutationObserver(() => {
      if (b.disabled && b.getAttribute('aria-busy') === 'true') window.__sawBusy = true;
    }).observe(b, { attributes: true, childList: true });
    const running = document.getElementById('running');
    new MutationObserver(() => {
      const names = [...running.querySelectorAll('li')].map((li) => li.dataset.target);
      if (new Set(names).size !== names.length) window.__lineProblems.push(`two lines for one target: ${names}`);
      for (const n of names) window.__lines.add(n);
    }).observe(running, { childList: true, subtree: true });
  });

  step('Tab to Generate and press Enter');
  await page.focus('#skip-json');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'generate',
    'Generate must be the next stop after the checkbox');
  await page.keyboard.press('Enter');

  step('wait for completion');
  await page.waitForSelector('#result:not([hidden])');
  await page.waitForFunction(() => document.getElementById('bar').value === 100);
  const title = await page.textContent('#result-title');
  assert.match(title, /completed/, title);
  assert.match(await page.textContent('#message'), /^Completed/);
  assert.equal(await page.evaluate(() => window.__sawBusy), true, 'the button never showed the build');
  assert.equal(await page.isDisabled('#generate'), false, 'the button must be usable again');
  assert.equal(await page.getAttribute('#message', 'aria-live'), 'polite');
  const built = await page.$$eval('#result-list li[data-status="built"]', (lis) => lis.map((li) => li.textContent));
  assert.equal(built.length, 1, JSON.stringify(built));
  assert.match(built[0], /^movies-db@potion: built/);
  // Progress: a line for the target while it ran, none left after.
  assert.deepEqual(await page.evaluate(() => [...window.__lines]), ['movies-db@potion']);
  assert.deepEqual(await page.evaluate(() => window.__lineProblems), []);
  assert.equal(await page.isHidden('#running'), true);
  assert.equal(await page.$$eval('#running li', (lis) => lis.length), 0);
  // The build warned (vectors of a movie not in movies.json): the result
  // is a warning, not a success, and the warning is shown as one.
  assert.equal(await page.getAttribute('#result', 'class'), 'result warn');
  assert.match(title, /completed with warnings/, title);
  assert.equal(await page.isVisible('#warnings'), true);
  const warnings = await page.$$eval('#warning-list li.warning', (lis) => lis.map((li) => li.textContent));
  assert.ok(warnings.some((w) => /^movies-db@potion: .*not in data\/movies\.json/.test(w)), JSON.stringify(warnings));
  const colours = await page.evaluate(() => {
    const colour = (v) => {
      const probe = document.createElement('div');
      probe.style.background = `var(${v})`;
      document.body.append(probe);
      const c = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return c;
    };
    return {
      warnings: getComputedStyle(document.getElementById('warnings')).backgroundColor,
      result: getComputedStyle(document.getElementById('result')).backgroundColor,
      warn: colour('--warn-bg'),
      ok: colour('--ok-bg'),
    };
  });
  assert.equal(colours.warnings, colours.warn, JSON.stringify(colours));
  assert.equal(colours.result, colours.warn, JSON.stringify(colours));
  assert.notEqual(colours.warn, colours.ok);

  step('check through the API that only movies-db@potion was built');
  const status = await (await page.request.get(`${base}/api/status`)).json();
  const builtNames = status.last.results.filter((r) => r.status === 'built').map((r) => r.name);
  assert.deepEqual(builtNames, ['movies-db@potion']);
  const states = Object.fromEntries(status.targets.map((t) => [t.name, t.state]));
  assert.deepEqual(states, {
    'movie-json': 'never-built',
    'movies-db@bge-micro': 'never-built',
    'movies-db@nomic': 'never-built',
    'movies-db@potion': 'up-to-date',
    'movies-db@potion-int8': 'never-built',
  });
  await page.waitForFunction(() => {
    const b = document.querySelector('#targets tr[data-target="movies-db@potion"] .badge');
    return b && b.textContent === 'up to date';
  });

  step('reload: the selection and the result stay');
  await page.reload();
  await page.waitForSelector('#model option[value="potion"]', { state: 'attached' });
  await page.waitForSelector('#result:not([hidden])');
  assert.equal(await page.inputValue('#model'), 'potion');
  assert.equal(await page.isChecked('#skip-json'), true);
  assert.match(await page.textContent('#result-title'), /completed/);
  assert.equal(await page.isVisible('#warnings'), true, 'the warnings stay after a reload');

  // A tidy picture for the README: keyboard focus on the button.
  await page.waitForFunction(() => {
    const b = document.querySelector('#targets tr[data-target="movies-db@potion"] .badge');
    return b && b.textContent === 'up to date';
  });
  await page.focus('#generate');
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot: ${screenshot}`);

  assert.deepEqual(problems, [], problems.join('\n'));
  step('ok');
} catch (e) {
  console.error(e);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
