// Drives the object browser in a headless Chromium through playwright-core,
// for TestBrowser (browser_test.go). Each step prints one JSON line on
// stdout: {"step": name, ...} when done, {"wait": name} when the Go side
// must act (it answers with a line on stdin), {"fail": message} on error.
//
// Environment: LWM2MD_UI_URL (the page), LWM2MD_CHROMIUM (the browser
// executable), LWM2MD_SCREENSHOTS (a directory), LWM2MD_EP and
// LWM2MD_EP2 (the two devices' endpoints), NODE_PATH (where playwright-core
// is installed); LWM2MD_EP3 is a queue-mode device; LWM2MD_TOKEN_URL is
// the same server behind an API that wants LWM2MD_TOKEN (a viewer's).

const { chromium } = require('playwright-core');
const readline = require('node:readline');
const path = require('node:path');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env('LWM2MD_UI_URL');
const shots = env('LWM2MD_SCREENSHOTS');
const ep = env('LWM2MD_EP');
const ep2 = env('LWM2MD_EP2');
const ep3 = env('LWM2MD_EP3');
const tokenURL = env('LWM2MD_TOKEN_URL');
const token = env('LWM2MD_TOKEN');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// wait asks the Go side to do something and returns its answer.
async function wait(name) {
  out({ wait: name });
  const { value, done } = await lines.next();
  if (done) throw new Error(`stdin closed while waiting for ${name}`);
  return value;
}

const T = 15000; // per expectation; the Go test bounds the whole run

async function main() {
  const browser = await chromium.launch({ executablePath: env('LWM2MD_CHROMIUM'), headless: true });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => d.accept()); // the Delete confirmation
  try {
    await steps(page);
    if (problems.length) throw new Error(problems.join('\n'));
  } catch (e) {
    await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

async function text(loc) {
  return (await loc.textContent({ timeout: T })).trim();
}

// until polls fn until it returns a truthy value.
async function until(what, fn) {
  const end = Date.now() + T;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${what} (last: ${JSON.stringify(last)})`);
}

async function steps(page) {
  // 1. The device list shows the registered device, online.
  await page.goto(url);
  const row = page.locator(`#devices tr[data-endpoint="${ep}"]`);
  await row.waitFor({ timeout: T });
  const status = await text(row.locator('.badge'));
  if (status !== 'online') throw new Error(`${ep} is ${status}, want online`);
  await until('the event stream is live', async () => (await page.getAttribute('#live', 'data-state')) === 'live');
  out({ step: 'list', status });

  // 2. A device registering now appears without a reload (event stream),
  // and the search box and the version filter narrow the list.
  await wait('register-second');
  const row2 = page.locator(`#devices tr[data-endpoint="${ep2}"]`);
  await row2.waitFor({ timeout: T });
  out({ step: 'live-list', version: await text(row2.locator('td').nth(2)) });
  await page.fill('#search', ep2);
  await row.waitFor({ state: 'detached', timeout: T });
  await row2.waitFor({ timeout: T });
  await page.fill('#search', '');
  await row.waitFor({ timeout: T });
  await page.selectOption('#version', '1.2');
  await row.waitFor({ state: 'detached', timeout: T });
  await row2.waitFor({ timeout: T });
  await page.selectOption('#version', '');
  await row.waitFor({ timeout: T });
  out({ step: 'filters' });
  await page.screenshot({ path: path.join(shots, 'list.png'), fullPage: true });

  // 3. Open the device: the registration and the object tree with the
  // model's names.
  await row.locator('a.ep').click();
  await page.waitForURL(`**/#/clients/${encodeURIComponent(ep)}`, { timeout: T });
  await page.locator('details.object[data-path="/3303"] .obj-name').waitFor({ timeout: T });
  const objName = await text(page.locator('details.object[data-path="/3303"] .obj-name'));
  const resName = await text(page.locator('tr[data-path="/3/0/0"] .rname .name'));
  const units = await text(page.locator('tr[data-path="/3303/0/5700"] .rname .name'));
  out({ step: 'device', object: objName, resource: resName, sensor: units, version: await text(page.locator('#registration')) });

  // 4. Read /3/0: the manufacturer appears.
  await page.getByRole('button', { name: 'Read /3/0', exact: true }).click();
  const manufacturer = await until('the manufacturer is shown', async () => {
    const t = await text(page.locator('tr[data-path="/3/0/0"] td.value'));
    return t !== '—' && t;
  });
  out({ step: 'read', manufacturer, model: await text(page.locator('tr[data-path="/3/0/1"] td.value')) });

  // 5. Write the UTC offset (/3/0/14); the page reads it back.
  await page.getByRole('button', { name: 'Write /3/0/14', exact: true }).click();
  const form = page.locator('form[aria-label="Write /3/0/14"]');
  await form.locator('input[name="value"]').fill('+02:00');
  await form.locator('button[type="submit"]').click();
  await form.waitFor({ state: 'detached', timeout: T });
  const offset = await until('the written value is shown', async () => {
    const t = await text(page.locator('tr[data-path="/3/0/14"] td.value'));
    return t === '+02:00' && t;
  });
  out({ step: 'write', value: offset });

  // 5b. Write an instance as a JSON node (partial update), and Execute.
  await page.getByRole('button', { name: 'Write /3303/0', exact: true }).click();
  const jform = page.locator('form[aria-label="Write /3303/0"]');
  await jform.locator('textarea').fill('{"path":"/3303/0","resources":[{"path":"/3303/0/5750","type":"string","value":"greenhouse"}]}');
  await jform.locator('select[name="mode"]').selectOption('patch');
  await jform.locator('button[type="submit"]').click();
  await jform.waitFor({ state: 'detached', timeout: T });
  const app = await until('the instance is read back', async () => {
    const t = await text(page.locator('tr[data-path="/3303/0/5750"] td.value'));
    return t === 'greenhouse' && t;
  });
  await page.getByRole('button', { name: 'Execute /3303/0/5605', exact: true }).click();
  await page.locator('form[aria-label="Execute /3303/0/5605"] button[type="submit"]').click();
  const executed = page.locator('.toast.info', { hasText: 'Executed /3303/0/5605' });
  await executed.waitFor({ timeout: T });
  out({ step: 'write-instance', value: app, executed: await text(executed) });

  // 5c. Create an instance of the temperature object, see it read, then
  // delete it again.
  await page.getByRole('button', { name: 'Create an instance of /3303', exact: true }).click();
  const cform = page.locator('form[aria-label="Create an instance of /3303"]');
  await cform.locator('textarea').fill('{"path":"/3303/1","resources":[{"path":"/3303/1/5750","type":"string","value":"cellar"}]}');
  await cform.locator('button[type="submit"]').click();
  const created = await until('the new instance is read', async () => {
    const cell = page.locator('tr[data-path="/3303/1/5750"] td.value');
    return (await cell.count()) && (await text(cell)) === 'cellar' && 'cellar';
  });
  await page.getByRole('button', { name: 'Delete /3303/1', exact: true }).click();
  await page.locator('section.instance[data-path="/3303/1"]').waitFor({ state: 'detached', timeout: T });
  out({ step: 'create', value: created });

  // 6. Observe the temperature: the value changes in the page as
  // notifications arrive, and they show in the event log.
  await page.getByRole('button', { name: 'Observe /3303/0/5700', exact: true }).click();
  const cell = page.locator('tr[data-path="/3303/0/5700"] td.value');
  const first = await until('a first temperature', async () => {
    const t = await text(cell);
    return t !== '—' && t;
  });
  const seen = [first];
  while (seen.length < 3) {
    const prev = seen[seen.length - 1];
    seen.push(await until('the temperature changes', async () => {
      const t = await text(cell);
      return t !== prev && t !== '—' && t;
    }));
  }
  // The first value may be the Observe answer's (or an earlier Read's),
  // so the log is checked on its own for notifications.
  const notes = await until('two notifications in the event log', async () => {
    const n = await page.locator('#event-log li[data-kind="notification"]').count();
    return n >= 2 && n;
  });
  const observing = await page.getAttribute('tr[data-path="/3303/0/5700"]', 'class');
  out({ step: 'observe', values: seen, notifications: notes, rowClass: observing });
  await page.screenshot({ path: path.join(shots, 'device.png'), fullPage: true });
  await page.locator('details.object[data-path="/3303"]').screenshot({ path: path.join(shots, 'temperature.png') });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, 'device-top.png') });

  // 7. An operation the device refuses: its problem+json is shown.
  await page.getByRole('button', { name: 'Delete /3/0', exact: true }).click();
  const toast = page.locator('.toast.error').last();
  await toast.waitFor({ timeout: T });
  out({ step: 'error', toast: await text(toast) });

  // 8. Stop the observation.
  await page.getByRole('button', { name: 'Observe /3303/0/5700', exact: true }).click();
  await until('the observation ends', async () => !/observed/.test(await page.getAttribute('tr[data-path="/3303/0/5700"]', 'class')));
  out({ step: 'cancel' });

  // 9. A queue-mode device: the list shows it fall asleep (event stream);
  // a Read is queued (202) and shown as such until the device wakes, then
  // its result fills the tree.
  await page.click('#crumbs a[href="#/"]');
  await wait('register-sleeper');
  const row3 = page.locator(`#devices tr[data-endpoint="${ep3}"]`);
  await row3.waitFor({ timeout: T });
  await until('the device is shown sleeping', async () => (await text(row3.locator('.badge'))) === 'sleeping');
  out({ step: 'sleeping' });
  await row3.locator('a.ep').click();
  await page.locator('tr[data-path="/3/0/0"]').waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Read /3/0', exact: true }).click();
  const item = page.locator('#queue li[data-id]').first();
  await item.waitFor({ timeout: T });
  const queued = await text(item);
  await page.screenshot({ path: path.join(shots, 'queued.png') });
  await wait('wake-sleeper');
  await until('the queued request is done', async () => (await text(item.locator('.badge'))) === 'done');
  const woke = await until('the queued read fills the tree', async () => {
    const t = await text(page.locator('tr[data-path="/3/0/0"] td.value'));
    return t !== '—' && t;
  });
  out({ step: 'queued', queued, manufacturer: woke, log: await page.locator('#event-log li[data-kind="request-result"]').count() });

  // 10. An API with tokens: without one the page says so; with a viewer
  // token (saved in the dialog) the list loads and the stream is live,
  // and a Write is refused for the role.
  await page.goto(tokenURL);
  const denied = page.locator('.toast.error').first();
  await denied.waitFor({ timeout: T });
  const deniedText = await text(denied);
  await until('the stream reports no access', async () => (await page.getAttribute('#live', 'data-state')) === 'unauthorized');
  await page.click('#token-button');
  await page.fill('#token-input', token);
  await page.click('#token-save');
  await page.locator(`#devices tr[data-endpoint="${ep}"]`).waitFor({ timeout: T });
  await until('the stream is live with the token', async () => (await page.getAttribute('#live', 'data-state')) === 'live');
  const stored = await page.evaluate(() => localStorage.getItem('lwm2md.token'));
  await page.goto(`${tokenURL}#/clients/${encodeURIComponent(ep)}`);
  await page.getByRole('button', { name: 'Write /3/0/14', exact: true }).click();
  const form2 = page.locator('form[aria-label="Write /3/0/14"]');
  await form2.locator('input[name="value"]').fill('+05:00');
  await form2.locator('button[type="submit"]').click();
  const forbidden = page.locator('.toast.error').last();
  await forbidden.waitFor({ timeout: T });
  out({ step: 'token', denied: deniedText, stored: stored === token, forbidden: await text(forbidden) });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(shots, 'dark.png') });
}

main().then(
  () => {
    out({ step: 'done' });
    process.exit(0);
  },
  (e) => {
    out({ fail: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  },
);
