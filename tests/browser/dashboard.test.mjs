// winsink's dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core. The real winsink binary runs with the shipped config (copied, with
// allow_changes = true), a test upstream on loopback and dig as the DNS client; the test
// asserts what a person sees on the page, then toggles an area and checks the config
// file and the next answer.
//
//   cd tests/browser && npm ci && WINSINK_BIN=../../target/debug/winsink npm test
//
// Screenshots (desktop 1280x800 and phone width, light and dark) go to target/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { promisify } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startUpstream } from "./upstream.mjs";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const bin = path.resolve(process.env.WINSINK_BIN || path.join(repo, "target/debug/winsink"));
const shots = path.join(repo, "target");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const BLOCKED = "watson.events.data.microsoft.com"; // Diagnostic Data: block
const LOGGED = "x.wns.windows.com"; // Microsoft Store: log
const UNLISTED = "www.example.org"; // no area
const UNCATALOGUED = "lab-check.uncatalogued.microsoft.com"; // Microsoft's, no area

let dir, upstream, winsink, dnsPort, httpPort, base, browser, userDir, configPath, original;
const stderr = [];

/** Resolves with the first capture of `re` in winsink's stderr. */
function waitForLine(re, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} in winsink's stderr:\n${stderr.join("")}`)), ms);
    const check = () => {
      const m = stderr.join("").match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
        return true;
      }
      return false;
    };
    if (!check()) winsink.stderr.on("data", () => check());
  });
}

async function dig(name) {
  const { stdout } = await run("dig", ["-p", String(dnsPort), "@127.0.0.1", "+tries=1", "+time=3", "+short", name, "A"]);
  return stdout.trim();
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "winsink-dashboard-"));
  upstream = await startUpstream();
  // The shipped config, as a person would copy it: only the catalog path (made
  // absolute) and `[http] allow_changes` differ.
  original = fs.readFileSync(path.join(repo, "config/winsink.toml"), "utf8")
    .replace(/^catalogs = \[.*\]$/m, `catalogs = [${JSON.stringify(path.join(repo, "policies/windows11-enterprise.toml"))}]`)
    .replace(/^allow_changes = false$/m, "allow_changes = true");
  assert.match(original, /^allow_changes = true$/m, "the shipped config has [http] allow_changes");
  configPath = path.join(dir, "winsink.toml");
  fs.writeFileSync(configPath, original);

  winsink = spawn(bin, [
    "run", "--config", configPath, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
    "--upstream", `udp://127.0.0.1:${upstream.port}`, "--log-format", "json",
  ], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info" } });
  winsink.stderr.setEncoding("utf8");
  winsink.stderr.on("data", (d) => stderr.push(d));
  dnsPort = Number(await waitForLine(/listening on 127\.0\.0\.1:(\d+) \(udp/));
  httpPort = Number(await waitForLine(/http: serving .* on 127\.0\.0\.1:(\d+)/));
  base = `http://127.0.0.1:${httpPort}/`;

  for (let i = 0; i < 3; i++) assert.equal(await dig(BLOCKED), "0.0.0.0");
  for (let i = 0; i < 2; i++) assert.equal(await dig(LOGGED), "192.0.2.1");
  assert.equal(await dig(UNLISTED), "192.0.2.1");
  assert.equal(await dig(UNCATALOGUED), "192.0.2.1");

  userDir = fs.mkdtempSync(path.join(os.tmpdir(), "winsink-chromium-"));
  browser = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
  });
});

after(async () => {
  if (browser) await browser.close();
  if (winsink) winsink.kill("SIGTERM");
  if (upstream) upstream.close();
  for (const d of [dir, userDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** A page with every console error and uncaught exception collected. */
async function open(viewport, colorScheme) {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  await page.setViewportSize(viewport);
  await page.emulateMedia({ colorScheme });
  await page.goto(base);
  return { page, errors };
}

const cell = (page, area, col) => page.locator(`#areas tr[data-area="${area}"] td`).nth(col);

test("the areas table shows what each area did", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "light");
  // Columns: area, action, queries, blocked, would block, clients, last seen.
  await assert.doesNotReject(page.locator('#areas tr[data-area="diagnostic-data"]').waitFor());
  await page.waitForFunction(() => {
    const tds = document.querySelectorAll('#areas tr[data-area="diagnostic-data"] td');
    return tds.length && tds[3].textContent === "3";
  }, null, { timeout: 15000 });
  assert.equal(await cell(page, "diagnostic-data", 0).textContent(), "Diagnostic Data");
  assert.equal(await cell(page, "diagnostic-data", 2).textContent(), "3");
  assert.equal(await cell(page, "diagnostic-data", 3).textContent(), "3");
  assert.equal(await cell(page, "diagnostic-data", 5).textContent(), "1");
  assert.equal(await page.locator('#areas tr[data-area="diagnostic-data"] button[aria-pressed="true"]').textContent(), "block");
  assert.equal(await cell(page, "microsoft-store", 4).textContent(), "2", "Microsoft Store: 2 would-block");
  assert.equal(await page.locator('#areas tr[data-area="microsoft-store"] button[aria-pressed="true"]').textContent(), "log");
  // The impact text is on hover and one click away.
  assert.match(await page.locator('#areas tr[data-area="diagnostic-data"]').getAttribute("title"), /^If blocked: ./);
  await cell(page, "diagnostic-data", 0).locator("button").click();
  assert.match(await page.locator('tr[data-impact-for="diagnostic-data"]').textContent(), /^What breaks if blocked: ./);
  // Sorting by a header orders the rows.
  await page.locator('#areas th[data-key="blocked"]').click();
  const firstBlocked = await page.locator("#areas tbody tr[data-area]").first().getAttribute("data-area");
  assert.equal(firstBlocked, "diagnostic-data");
  // Unlisted names have a row of their own.
  assert.equal(await cell(page, "none", 2).textContent(), "2");
  await page.screenshot({ path: path.join(shots, "dashboard-desktop.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

test("the live log shows the queries and explains each line", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "light");
  const rows = page.locator("#log tbody tr");
  await page.waitForFunction(() => document.querySelectorAll("#log tbody tr").length >= 7, null, { timeout: 10000 });
  const text = await page.locator("#log tbody").textContent();
  for (const name of [BLOCKED, LOGGED, UNLISTED, UNCATALOGUED]) assert.ok(text.includes(name), `${name} in the log`);
  const blockedRow = rows.filter({ hasText: BLOCKED }).first();
  assert.equal(await blockedRow.locator(".badge").textContent(), "block");
  assert.equal(await blockedRow.locator("td").nth(5).textContent(), "Diagnostic Data");
  const loggedRow = rows.filter({ hasText: LOGGED }).first();
  assert.equal(await loggedRow.locator(".badge").textContent(), "log");
  // Filters: decision.
  await page.selectOption("#f-decision", "block");
  await page.waitForFunction(() => [...document.querySelectorAll("#log tbody tr")].every((r) => r.dataset.decision === "block"));
  assert.equal(await rows.count(), 3);
  await page.selectOption("#f-decision", "");
  // Text filter.
  await page.fill("#f-text", "wns");
  await page.waitForFunction(() => document.querySelectorAll("#log tbody tr").length === 2);
  await page.fill("#f-text", "");
  // Each line links to its explanation.
  await page.waitForFunction(() => document.querySelectorAll("#log tbody tr").length >= 7);
  await rows.filter({ hasText: LOGGED }).first().locator("a.why").click();
  await page.locator("#explain-result .verdict").waitFor();
  assert.equal(await page.inputValue("#explain-name"), LOGGED);
  assert.match(await page.locator("#explain-result").textContent(), /Microsoft Store/);
  assert.equal(await page.locator("#explain-result .verdict .badge").textContent(), "log");
  // Pauses on hover: a query sent meanwhile does not appear until the pointer leaves.
  await page.hover("#log tbody tr >> nth=0");
  assert.match(await page.locator("#log-state").textContent(), /Paused/);
  const before = await rows.count();
  await dig("paused-check.example.org");
  await page.waitForTimeout(2600);
  assert.equal(await rows.count(), before);
  await page.mouse.move(5, 5);
  await page.waitForFunction(() => document.querySelector("#log tbody").textContent.includes("paused-check.example.org"));
  assert.deepEqual(errors, []);
  await page.close();
});

test("the explain box answers as winsink explain does", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "light");
  await page.fill("#explain-name", BLOCKED);
  await page.click("#explain-form button[type=submit]");
  await page.locator("#explain-result .verdict").waitFor();
  assert.equal(await page.locator("#explain-result .verdict .badge").textContent(), "block");
  const result = await page.locator("#explain-result").textContent();
  assert.match(result, /Diagnostic Data/);
  assert.match(result, /watson\.\*\.microsoft\.com/);
  const cli = JSON.parse((await run(bin, ["explain", "--config", configPath, "--json", BLOCKED])).stdout);
  assert.equal(cli.decision, "block");
  for (const m of cli.matches) assert.ok(result.includes(m.pattern), `${m.pattern} shown`);
  await page.fill("#explain-name", UNLISTED);
  await page.fill("#explain-client", "10.0.10.5");
  await page.click("#explain-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#explain-result .verdict .badge")?.textContent === "pass");
  assert.match(await page.locator("#explain-result").textContent(), /10\.0\.10\.5/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the names Microsoft's page does not list are shown", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "light");
  await page.waitForFunction((n) => document.querySelector("#uncatalogued tbody").textContent.includes(n), UNCATALOGUED, { timeout: 10000 });
  const row = page.locator("#uncatalogued tbody tr").filter({ hasText: UNCATALOGUED });
  assert.equal(await row.locator("td").nth(1).textContent(), "1");
  assert.equal(await page.locator("#uncatalogued tbody").textContent().then((t) => t.includes(BLOCKED)), false);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the plot shows queries per area over time", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "dark");
  await page.waitForFunction(() => document.querySelector("#chart .u-legend")?.textContent.includes("Diagnostic Data"), null, { timeout: 10000 });
  const legend = await page.locator("#chart .u-legend").textContent();
  assert.match(legend, /Diagnostic Data/);
  assert.match(legend, /Microsoft Store/);
  await page.selectOption("#chart-mode", "blocked");
  const blockedLegend = await page.locator("#chart .u-legend").textContent();
  assert.match(blockedLegend, /Diagnostic Data/);
  assert.doesNotMatch(blockedLegend, /Microsoft Store/);
  await page.click('[data-range="86400"]');
  await page.locator("#chart canvas").waitFor();
  await page.screenshot({ path: path.join(shots, "dashboard-desktop-dark.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a phone-width screen gets one column", async () => {
  const { page, errors } = await open({ width: 390, height: 844 }, "light");
  await page.locator('#areas tr[data-area="diagnostic-data"]').waitFor();
  await page.locator("#chart canvas").waitFor({ timeout: 10000 });
  const areas = await page.locator("#areas-section").boundingBox();
  const explain = await page.locator("#explain-section").boundingBox();
  assert.ok(areas.width <= 390 && explain.width <= 390, "cards fit the width");
  assert.ok(explain.y > areas.y + areas.height - 1, "cards stack");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.equal(overflow, 0, "no sideways scrolling of the page");
  await page.screenshot({ path: path.join(shots, "dashboard-phone.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("toggling Microsoft Store to block edits the config file and sinkholes the next query", async () => {
  const { page, errors } = await open({ width: 1280, height: 800 }, "light");
  const store = page.locator('#areas tr[data-area="microsoft-store"]');
  await store.locator('button[data-action="block"]:not([disabled])').waitFor();
  await store.locator('button[data-action="block"]').click();
  // The file changed by exactly one line, comments and layout intact (diff -u).
  const changed = (await waitForDiff()).split("\n").filter((l) => /^[-+](?![-+])/.test(l));
  assert.deepEqual(changed, ['-microsoft-store = "log"', '+microsoft-store = "block"']);
  // The normal reload picks it up: the page shows the new action in force...
  await page.waitForFunction(() => document.querySelector('#areas tr[data-area="microsoft-store"] button[aria-pressed="true"]')?.textContent === "block"
    && !document.querySelector('#areas tr[data-area="microsoft-store"] .pending'), null, { timeout: 15000 });
  assert.match(await page.locator("#toggle-note").textContent(), /Microsoft Store is now block/);
  // ...and the next query is sinkholed.
  assert.equal(await dig(LOGGED), "0.0.0.0");
  await page.screenshot({ path: path.join(shots, "dashboard-desktop-toggled.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

/** `diff -u` of the config against the original, once the file has changed. */
async function waitForDiff() {
  for (let i = 0; i < 50; i++) {
    const now = fs.readFileSync(configPath, "utf8");
    if (now !== original) {
      const orig = path.join(dir, "original.toml");
      fs.writeFileSync(orig, original);
      return run("diff", ["-u", orig, configPath]).then(() => "", (e) => e.stdout);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the config file did not change");
}
