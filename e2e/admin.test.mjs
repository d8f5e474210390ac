// End-to-end test of the `pipe serve` admin page in a real headless browser:
// Debian's chromium driven by playwright-core (which never downloads a
// browser). Run by tests/e2e.rs:
//
//   node e2e/admin.test.mjs http://127.0.0.1:PORT SCREENSHOT_PATH
//
// It picks `potion`, ticks "Skip JSON files", presses Generate with the
// keyboard, follows the progress to completion, checks that only
// movies-db@potion was built, that the selection survives a reload, and
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

  step(`open ${base}`);
  await page.goto(base);
  await page.waitForSelector('#model option[value="potion"]', { state: 'attached' });
  await page.waitForSelector('#targets tr[data-target="movies-db@potion"]');
  assert.equal(await page.textContent('#targets tr[data-target="movies-db@potion"] .badge'), 'stale');
  // Models table: name, dimensions, vector counts.
  const modelsText = await page.textContent('#models');
  assert.match(modelsText, /Potion Base 2M/);
  assert.match(modelsText, /vectors/);

  step('pick potion, skip JSON');
  await page.selectOption('#model', 'potion');
  await page.check('#skip-json');
  // Labels: the controls are reachable by their visible names.
  assert.equal(await page.getByLabel('Embedding model').inputValue(), 'potion');
  assert.equal(await page.getByLabel('Skip JSON files').isChecked(), true);

  // Record whether the button ever shows that a build runs (it may be quick).
  await page.evaluate(() => {
    window.__sawBusy = false;
    const b = document.getElementById('generate');
    new MutationObserver(() => {
      if (b.disabled && b.getAttribute('aria-busy') === 'true') window.__sawBusy = true;
    }).observe(b, { attributes: true, childList: true });
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

  step('check through the API that only movies-db@potion was built');
  const status = await (await page.request.get(`${base}/api/status`)).json();
  const builtNames = status.last.results.filter((r) => r.status === 'built').map((r) => r.name);
  assert.deepEqual(builtNames, ['movies-db@potion']);
  const states = Object.fromEntries(status.targets.map((t) => [t.name, t.state]));
  assert.deepEqual(states, {
    'movie-json': 'stale',
    'movies-db@bge-micro': 'stale',
    'movies-db@nomic': 'stale',
    'movies-db@potion': 'up-to-date',
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
