// dashboard.mjs - drives the dashboard of `projstore serve` in a real headless
// Chromium (Debian's, through playwright-core) like an operator would: sign in,
// search, open a project, start a move, watch it finish, go back to the list.
//
// Run by tests/e2e/t0750-serve-dashboard.sh, which starts the server and the
// host agents (which do the move).  Environment:
//   SERVE_URL   http://127.0.0.1:PORT/      TOKEN  an admin token
//   PROJECT     the project to move          FROM, TO  its host now, the target
//   SEARCH      search text matching PROJECT (and not every project)
//   ALL         number of projects in the catalog
//   SHOT        where to write the screenshot (PNG)
//   PLAYWRIGHT  path of the playwright-core module
//   CHROMIUM    browser binary (default /usr/bin/chromium)
// Prints TAP lines; exits non-zero on the first failure.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const env = (k) => {
  if (!process.env[k]) throw new Error('missing ' + k);
  return process.env[k];
};
const URL = env('SERVE_URL'), TOKEN = env('TOKEN'), PROJECT = env('PROJECT');
const FROM = env('FROM'), TO = env('TO'), SEARCH = env('SEARCH'), ALL = Number(env('ALL'));
const SHOT = env('SHOT');

let n = 0;
function ok(title) { console.log('ok ' + ++n + ' - ' + title); }

const profile = mkdtempSync(join(tmpdir(), 'projstore-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await context.newPage();
  const foreign = [];
  const consoleErrors = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(URL) && !u.startsWith('data:')) foreign.push(u);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(20000);

  /* 1. sign in once */
  await page.goto(URL);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', 'not-a-valid-token-at-all');
  await page.click('#login-form button');
  await page.locator('#login-error').filter({ hasText: /refused|not valid/ }).waitFor();
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  await page.locator('#view-projects').waitFor({ state: 'visible' });
  await page.waitForFunction((all) => document.querySelectorAll('#projects tbody tr').length === all, ALL);
  ok('signs in with a token and lists all ' + ALL + ' projects');

  /* relative times with the exact time on hover; ratios; quota bars */
  const t = page.locator(`#projects tr[data-project="${PROJECT}"] time`).first();
  const text = await t.textContent();
  const title = await t.getAttribute('title');
  if (!/just now|ago/.test(text) || !/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(title)) {
    throw new Error('last snapshot shows "' + text + '" with title "' + title + '"');
  }
  if (!/×/.test(await page.locator(`#projects tr[data-project="${PROJECT}"]`).textContent())) {
    throw new Error('no ratios in the row');
  }
  if ((await page.locator('#projects .bar').count()) < 1) throw new Error('no quota bar');
  ok('last snapshot "' + text + '" with the exact time on hover, ratios, quota bar');

  /* 2. search */
  await page.fill('#search', SEARCH);
  await page.waitForFunction(() => !location.hash.includes('search=') ? false : true);
  await page.waitForFunction((p) => {
    const rows = [...document.querySelectorAll('#projects tbody tr')];
    return rows.length > 0 && rows.every((r) => r.dataset.project.includes(p.s)) && rows.some((r) => r.dataset.project === p.id);
  }, { s: SEARCH, id: PROJECT });
  const filtered = await page.locator('#projects tbody tr').count();
  if (filtered >= ALL) throw new Error('search did not filter');
  ok('search "' + SEARCH + '" shows ' + filtered + ' of ' + ALL + ' projects');

  /* 3. open the project: snapshots and events */
  await page.click(`#projects tr[data-project="${PROJECT}"] a`);
  await page.locator('#view-project').waitFor({ state: 'visible' });
  await page.locator('#p-facts').filter({ hasText: FROM }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#snapshots tbody tr time').length > 0);
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length > 0);
  ok('project page: deployed on ' + FROM + ', snapshots and events listed');

  /* 4. start a move and watch it live */
  await page.selectOption('#move-to', TO);
  await page.click('#move');
  await page.locator('#op').waitFor({ state: 'visible' });
  const seen = new Set();
  const t0 = Date.now();
  for (;;) {
    const state = await page.locator('#op').getAttribute('data-state');
    seen.add(state + ':' + (await page.locator('#op-phase').textContent()).trim());
    if (state === 'done') break;
    if (state === 'failed') throw new Error('the move failed: ' + (await page.locator('#op-result').textContent()));
    if (Date.now() - t0 > 120000) throw new Error('the move did not finish in 120 s; seen ' + [...seen].join(', '));
    await page.waitForTimeout(100);
  }
  const width = await page.locator('#op-bar').evaluate((e) => e.style.width);
  if (width !== '100%') throw new Error('progress bar at ' + width + ' when done');
  ok('move to ' + TO + ' followed live: ' + [...seen].join(' -> '));
  await page.locator('#p-facts dd').first().filter({ hasText: TO }).waitFor();
  await page.locator('#operations tbody tr').first().filter({ hasText: 'done' }).waitFor();
  ok('the page shows the project on ' + TO + ' and the operation done');
  await page.screenshot({ path: SHOT, fullPage: true });
  ok('screenshot ' + SHOT);

  /* 5. back to the list: the search and its results are still there */
  await page.click('#back');
  await page.locator('#view-projects').waitFor({ state: 'visible' });
  const kept = await page.inputValue('#search');
  if (kept !== SEARCH) throw new Error('the search box holds "' + kept + '" after coming back');
  const rowsNow = await page.locator('#projects tbody tr').count();
  if (rowsNow !== filtered) throw new Error(rowsNow + ' rows after coming back, ' + filtered + ' before');
  await page.locator(`#projects tr[data-project="${PROJECT}"]`).waitFor({ state: 'visible' });
  /* ... and stays there after the list refreshed itself */
  await page.waitForTimeout(1500);
  await page.locator(`#projects tr[data-project="${PROJECT}"] td:nth-child(2)`).filter({ hasText: TO }).waitFor();
  if ((await page.locator('#projects tbody tr').count()) !== filtered) throw new Error('the filtered list changed');
  ok('back on the list: search "' + kept + '" kept, ' + filtered + ' rows, ' + PROJECT + ' still shown (now on ' + TO + ')');

  /* the browser's back button does the same */
  await page.click(`#projects tr[data-project="${PROJECT}"] a`);
  await page.locator('#view-project').waitFor({ state: 'visible' });
  await page.goBack();
  await page.locator('#view-projects').waitFor({ state: 'visible' });
  await page.locator(`#projects tr[data-project="${PROJECT}"]`).waitFor({ state: 'visible' });
  if ((await page.inputValue('#search')) !== SEARCH) throw new Error('search lost after the back button');
  ok('the back button also keeps the search and the project');

  /* 6. a reload keeps the token (sessionStorage) and the search */
  await page.reload();
  await page.locator('#view-projects').waitFor({ state: 'visible' });
  if (await page.locator('#login').isVisible()) throw new Error('asked for the token again');
  if ((await page.inputValue('#search')) !== SEARCH) throw new Error('search lost on reload');
  await page.locator(`#projects tr[data-project="${PROJECT}"]`).waitFor({ state: 'visible' });
  ok('a reload asks for no token and keeps the search');

  /* 7. hosts with their load */
  await page.click('#nav-hosts');
  await page.locator(`#hosts tr[data-host="${TO}"]`).waitFor();
  const hostRow = (await page.locator(`#hosts tr[data-host="${TO}"] td`).allTextContents()).join(' | ');
  if (!/up/.test(hostRow)) throw new Error('host ' + TO + ' is not shown up: ' + hostRow);
  ok('hosts page: ' + hostRow);
  await page.click('#nav-projects');
  await page.locator(`#projects tr[data-project="${PROJECT}"]`).waitFor({ state: 'visible' });
  if ((await page.inputValue('#search')) !== SEARCH) throw new Error('search lost after the hosts page');
  ok('the Projects tab brings the same search back');

  if (foreign.length) throw new Error('requests to other origins: ' + foreign.join(' '));
  if (consoleErrors.length) throw new Error('script errors: ' + consoleErrors.join(' | '));
  ok('no request left the server, no script error');
} catch (e) {
  failed = true;
  console.log('not ok ' + ++n + ' - ' + String(e && e.message ? e.message : e).split('\n')[0]);
  console.log('# ' + String(e && e.stack ? e.stack : e).replace(/\n/g, '\n# '));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log('1..' + n);
process.exit(failed ? 1 : 0);
