// Browser test of the GraphiQL page that `partnerhub serve --demo` serves, in headless Chromium
// driven by playwright-core, with every request to another host blocked (and counted as a failure).
//
// It builds nothing: it runs the binary that `cargo test`/`cargo build` left in the target directory
// (PARTNERHUB_BIN overrides), on a free port, with a fresh SQLite file in a temporary directory.
// Checks: GraphiQL loads with the sample query and header example; the Docs explorer lists
// Query.customers; the sample query run with a demo token (read from the server's banner) shows
// data in the result pane; autocomplete offers `customers`. Screenshots go to
// target/browser-artifacts/ (BROWSER_ARTIFACTS overrides).
// Every wait is bounded; the whole run is cut at TOTAL_MS. Exit code 0 only when everything passed.
//
//   node tests/browser/graphiql.test.mjs

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const TOTAL_MS = 110_000;
const STEP_MS = 20_000;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const artifacts = path.resolve(process.env.BROWSER_ARTIFACTS || path.join(repo, 'target', 'browser-artifacts'));
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The flags the machine notes give for Debian's Chromium: without the background-networking ones
// Chromium tries to reach Google's hosts at every start.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const QUERY = '{\n  viewer { tenantKind roles }\n  customers(first: 10) { totalCount nodes { companyName } }\n}\n';

let server = null;
let browser = null;
let page = null;
let workDir = null;
let serverOut = '';
let serverErr = '';
const offHost = [];
const pageErrors = [];
const cspViolations = [];

function log(message) {
  console.log(`[browser-test] ${message}`);
}

/** Runs `promise` but gives up after `ms` with an error naming `what`. */
function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The partnerhub binary: PARTNERHUB_BIN, else the newest of debug/release in the target directory. */
function findBinary() {
  if (process.env.PARTNERHUB_BIN) return path.resolve(process.env.PARTNERHUB_BIN);
  const target = path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target');
  const candidates = ['debug', 'release']
    .map((profile) => path.join(target, profile, 'partnerhub'))
    .filter((file) => existsSync(file))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (candidates.length === 0) {
    throw new Error(`no partnerhub binary under ${target}/{debug,release}: run \`cargo build\` first (or set PARTNERHUB_BIN)`);
  }
  return candidates[0];
}

/** Starts `serve --demo` on a free port; resolves with its base URL once /healthz answers. */
async function startServer() {
  const bin = findBinary();
  workDir = mkdtempSync(path.join(tmpdir(), 'partnerhub-browser-'));
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${path.join(workDir, 'demo.db')}?mode=rwc`,
    NO_COLOR: '1',
  };
  log(`starting ${bin} serve --demo (database in ${workDir})`);
  server = spawn(bin, ['serve', '--demo', '--listen', '127.0.0.1:0'], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (chunk) => (serverOut += chunk));
  server.stderr.on('data', (chunk) => (serverErr += chunk));
  const exited = new Promise((_, reject) =>
    server.once('exit', (code, signal) => reject(new Error(`the server exited early (code ${code}, signal ${signal})`))),
  );
  exited.catch(() => {});

  const started = (async () => {
    let base = null;
    while (!base) {
      const match = /https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d+/.exec(serverOut);
      if (match) base = match[0];
      else await sleep(100);
    }
    for (;;) {
      try {
        const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (response.ok) break;
      } catch {
        // not up yet
      }
      await sleep(200);
    }
    // The banner is printed before the server listens; let the pipe deliver all of it.
    for (let i = 0; i < 20 && !/Sample query/i.test(serverOut); i++) await sleep(100);
    return base;
  })();
  return within(30_000, 'waiting for the server to print its URL and answer /healthz', Promise.race([started, exited]));
}

/**
 * The platform operator's token from the demo banner: the first JWT after a header line naming the
 * platform, else the first JWT printed. Checked to decode to claims with a tenant id.
 */
function demoToken() {
  const jwt = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;
  const lines = serverOut.split(/\r?\n/);
  let label = null;
  let token = null;
  let afterPlatform = false;
  for (const line of lines) {
    const found = jwt.exec(line);
    if (!found && /platform/i.test(line) && line.trim().startsWith('#')) {
      afterPlatform = true;
      label = line.trim();
    } else if (found && afterPlatform) {
      token = found[0];
      break;
    }
  }
  if (!token) {
    const first = lines.find((line) => jwt.test(line));
    if (!first) throw new Error(`no token in the demo banner; the server printed:\n${serverOut}`);
    token = jwt.exec(first)[0];
    label = 'first token of the banner';
  }
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  if (!claims.tid) throw new Error(`the banner's token has no tid claim: ${JSON.stringify(claims)}`);
  log(`using the demo token of "${label}" (tid ${claims.tid})`);
  return token;
}

/** Text of the CodeMirror editors on the page, in document order. */
function editorTexts(page) {
  return page.evaluate(() => [...document.querySelectorAll('.CodeMirror')].map((el) => (el.CodeMirror ? el.CodeMirror.getValue() : '')));
}

async function setEditor(page, marker, text, what) {
  const done = await page.evaluate(
    ({ marker, text }) => {
      const el = [...document.querySelectorAll('.CodeMirror')].find((e) => e.CodeMirror && e.CodeMirror.getValue().includes(marker));
      if (!el) return false;
      el.CodeMirror.setValue(text);
      return true;
    },
    { marker, text },
  );
  if (!done) throw new Error(`no editor holding ${what} (${JSON.stringify(marker)})`);
}

async function screenshot(page, name) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, timeout: STEP_MS });
  log(`screenshot ${path.relative(repo, file)}`);
}

async function run() {
  mkdirSync(artifacts, { recursive: true });
  for (const name of ['01-loaded.png', '02-docs.png', '03-result.png', '04-autocomplete.png', 'failure.png']) rmSync(path.join(artifacts, name), { force: true });
  const base = await startServer();
  log(`server at ${base}`);
  const token = demoToken();

  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: apt-get install -y chromium`);
  browser = await within(30_000, 'launching Chromium', chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 }));
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
  // Nothing may leave this machine: any request to another host is aborted and makes the test fail.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && !LOCAL_HOSTS.has(url.hostname)) {
      offHost.push(url.href);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  await context.routeWebSocket(/.*/, (ws) => {
    const url = new URL(ws.url());
    if (!LOCAL_HOSTS.has(url.hostname)) {
      offHost.push(url.href);
      return ws.close();
    }
    return ws.connectToServer();
  });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      const text = message.text();
      if (/Content Security Policy/i.test(text)) cspViolations.push(text);
      log(`console error: ${text}`);
    }
  });

  // 1. GET / leads to GraphiQL, which loads with the sample query and the header example.
  await page.goto(`${base}/`, { waitUntil: 'load', timeout: STEP_MS });
  if (new URL(page.url()).pathname !== '/graphql') throw new Error(`GET / led to ${page.url()}, not /graphql`);
  await page.locator('.graphiql-query-editor .CodeMirror').first().waitFor({ state: 'visible' });
  const texts = await editorTexts(page);
  if (!texts.some((t) => t.includes('customers(first: 10)'))) throw new Error(`the sample query is missing; editors hold ${JSON.stringify(texts)}`);
  if (!texts.some((t) => t.includes('Bearer <paste a token'))) throw new Error(`the header example is missing; editors hold ${JSON.stringify(texts)}`);
  await screenshot(page, '01-loaded.png');
  log('GraphiQL loaded with the sample query and the header example');

  // 2. The Docs explorer lists Query.customers (the schema came through introspection).
  await page.getByRole('button', { name: /Show Documentation Explorer/i }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.waitFor({ state: 'visible' });
  const queryType = docs.locator('a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ });
  const schemaError = docs.locator('.graphiql-doc-explorer-error');
  await Promise.race([queryType.first().waitFor({ state: 'visible' }), schemaError.first().waitFor({ state: 'visible' })]);
  if (await schemaError.count()) throw new Error(`the Docs explorer shows an error: ${await schemaError.first().innerText()}`);
  await queryType.first().click();
  const customersField = docs.locator('.graphiql-doc-explorer-field-name', { hasText: /^customers$/ }).first();
  await customersField.waitFor({ state: 'visible' });
  await customersField.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await screenshot(page, '02-docs.png');
  log('the Docs explorer lists Query.customers');

  // 3. The query, with a demo token in the Headers tab, shows data in the result pane.
  await setEditor(page, 'Bearer <paste a token', JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2), 'the header example');
  await setEditor(page, 'customers(first: 10)', QUERY, 'the sample query');
  await page.locator('.graphiql-execute-button').click();
  const resultEditor = page.locator('.graphiql-response .CodeMirror').first();
  await resultEditor.waitFor({ state: 'visible' });
  let result = '';
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    result = await resultEditor.evaluate((el) => (el.CodeMirror ? el.CodeMirror.getValue() : el.textContent));
    if (result.includes('"data"') || result.includes('"errors"')) break;
    await sleep(200);
  }
  let body;
  try {
    body = JSON.parse(result);
  } catch {
    throw new Error(`the result pane does not hold a JSON response within ${STEP_MS / 1000} s: ${JSON.stringify(result.slice(0, 500))}`);
  }
  if (body.errors) throw new Error(`the query answered errors: ${JSON.stringify(body.errors)}`);
  const customers = body.data && body.data.customers;
  if (!customers || !(customers.totalCount > 0) || !customers.nodes.length || !customers.nodes[0].companyName) {
    throw new Error(`no customers in the result: ${result.slice(0, 500)}`);
  }
  await screenshot(page, '03-result.png');
  log(`the result pane shows ${customers.totalCount} customers (${customers.nodes.map((n) => n.companyName).join(', ')}), viewer ${JSON.stringify(body.data.viewer)}`);

  // 4. Autocomplete offers the schema's fields while typing.
  await page.evaluate(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
    cm.setValue('{\n  \n}\n');
    cm.focus();
    cm.setCursor({ line: 1, ch: 2 });
  });
  await page.keyboard.type('cust', { delay: 50 });
  await page.locator('.CodeMirror-hints .CodeMirror-hint', { hasText: /^customers$/ }).first().waitFor({ state: 'visible' });
  await screenshot(page, '04-autocomplete.png');
  log('autocomplete offers customers');

  cspViolations.push(...(await page.evaluate(() => window.__cspViolations || [])));

  // The guard itself: a page of the same context (without the page's CSP) asks for another host;
  // the route must see and abort it, or the "no request left 127.0.0.1" above proves nothing.
  const seen = offHost.length;
  const probe = await context.newPage();
  await probe.goto('http://blocked.invalid/guard-self-check', { timeout: STEP_MS }).catch(() => {});
  await probe.close();
  if (offHost.length !== seen + 1) throw new Error('the off-host guard did not see a request to blocked.invalid');
  offHost.pop();
  log('off-host guard self-check: a request to blocked.invalid was seen and aborted');
}

async function cleanup() {
  if (browser) {
    await within(10_000, 'closing Chromium', browser.close()).catch((e) => log(String(e)));
    browser = null;
  }
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await within(5_000, 'stopping the server', gone).catch(() => server.kill('SIGKILL'));
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}

const watchdog = setTimeout(async () => {
  console.error(`[browser-test] FAILED: the whole test took longer than ${TOTAL_MS / 1000} s`);
  await cleanup().catch(() => {});
  process.exit(1);
}, TOTAL_MS);

let failure = null;
try {
  await run();
} catch (error) {
  failure = error;
  if (page) await screenshot(page, 'failure.png').catch(() => {});
}
await cleanup();
clearTimeout(watchdog);

if (!failure && offHost.length) failure = new Error(`requests to other hosts were attempted (and blocked): ${offHost.join(', ')}`);
if (!failure && cspViolations.length) failure = new Error(`Content-Security-Policy violations: ${cspViolations.join('; ')}`);
if (!failure && pageErrors.length) failure = new Error(`uncaught errors in the page: ${pageErrors.join('; ')}`);
if (failure) {
  console.error(`[browser-test] FAILED: ${failure.message}`);
  if (serverErr) console.error(`[browser-test] last lines of the server's stderr:\n${serverErr.split('\n').slice(-15).join('\n')}`);
  console.error(`[browser-test] screenshots so far in ${artifacts}`);
  process.exit(1);
}
log(`passed; no request left 127.0.0.1; screenshots in ${path.relative(repo, artifacts) || artifacts}`);
