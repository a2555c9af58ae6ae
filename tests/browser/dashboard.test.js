// The dashboard at /, in a real browser, against the real server and a real receiver:
// every step a user takes when a webhook goes missing. Fails on any console error.
// Screenshots of each view (desktop and phone) go to $HOOKLINE_SCREENSHOTS.

import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, screenshots, watchErrors } from "./browser.js";
import { startReceiver, verifies } from "./receiver.js";

const base = process.env.HOOKLINE_BASE;
const key = process.env.HOOKLINE_KEY;

// A call to the API as an integration would make it; answers the status and the JSON body.
async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
}

async function publish(event) {
  const answer = await call("POST", "/v1/events", event);
  assert.equal(answer.status, 202, answer.text);
  return answer.body;
}

async function until(what, check, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Opens the page and signs in with `apiKey` (its answer is for the caller to wait for).
async function signIn(page, apiKey) {
  await page.goto(`${base}/`);
  await page.getByLabel("API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const nav = (page) => page.getByRole("navigation", { name: "Sections" });
const shot = (page, name) => page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });

test("sign in, create, copy the secret, watch deliveries live, inspect, redeliver, replay, test mode, charts", async () => {
  const receiver = await startReceiver();
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    const page = await context.newPage();
    const errors = watchErrors(page);

    // A wrong key is refused in words, with the one 401 it costs; then sign in by keyboard.
    await signIn(page, "hk_not_a_real_key");
    await page.getByRole("alert").getByText("That API key was not accepted").waitFor();
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], /401.*\/v1\/test-mode/);
    errors.length = 0;
    await shot(page, "sign-in");
    await page.getByLabel("API key").fill(key);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Delivery log" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 1, "the key is kept in the tab's session");
    assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing is left in local storage");

    // Create a destination pointed at the receiver; the secret is shown once, copied.
    await nav(page).getByRole("link", { name: "Destinations" }).click();
    await page.getByText("No destinations yet").waitFor();
    await page.getByRole("link", { name: "New destination" }).click();
    await page.getByLabel("URL").fill(receiver.url);
    await page.getByLabel("Name").fill("billing receiver");
    await page.getByLabel("Event types").fill("turn.*");
    await page.getByLabel("Retry schedule").fill("600, 3600");
    await page.getByRole("button", { name: "Create destination" }).click();
    await page.getByText("you will not see this again").waitFor();
    const shown = await page.locator("[data-secret]").textContent();
    assert.match(shown, /^whsec_[A-Za-z0-9+/=]{30,}$/);
    await page.getByRole("button", { name: "Copy secret" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    const secret = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(secret, shown);
    await shot(page, "destination-created");
    await page.getByRole("link", { name: "Go to the destination" }).click();
    await page.getByRole("heading", { name: "billing receiver" }).waitFor();
    const destinationId = page.url().split("/").pop();
    assert.match(destinationId, /^dst_/);

    // Publish through the API: the delivery appears in the open log without a reload.
    await nav(page).getByRole("link", { name: "Delivery log" }).click();
    await page.getByText("No deliveries match").waitFor();
    await page.evaluate(() => {
      window.notReloaded = true;
    });
    const first = await publish({ type: "turn.completed", stream: "sess_browser", data: { tokens: 812 } });
    const firstRow = page.locator(`tr:has-text("turn.completed")`);
    await firstRow.locator(".badge", { hasText: "delivered" }).waitFor();
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page reloaded");
    assert.equal(receiver.received.length, 1);
    assert.ok(verifies(secret, receiver.received[0]), "the copied secret verifies what the receiver got");
    assert.equal(JSON.parse(receiver.received[0].body).id, first.id);
    await shot(page, "delivery-log");

    // Its attempts: the request as sent, signed, and the receiver's answer.
    await firstRow.getByRole("link", { name: "turn.completed" }).click();
    const attempt1 = page.getByRole("article", { name: "Attempt 1" });
    await attempt1.waitFor();
    await attempt1.getByText("webhook-signature").waitFor();
    await attempt1.getByText(`"id": "${first.id}"`).waitFor();
    await attempt1.getByText('"ok": true').waitFor();

    // The receiver fails: the next event's first attempt records its 500 and body; once
    // the receiver is back, a redelivery's second attempt succeeds.
    receiver.fail(true);
    await nav(page).getByRole("link", { name: "Delivery log" }).click();
    await publish({ type: "turn.failed", stream: "sess_browser", data: { reason: "x".repeat(400) } });
    const failedRow = page.locator(`tr:has-text("turn.failed")`);
    await failedRow.locator(".badge", { hasText: /^failed$/ }).waitFor();
    await failedRow.getByRole("link", { name: "turn.failed" }).click();
    await page.getByRole("article", { name: "Attempt 1" }).getByText("receiver told to fail").waitFor();
    await page.getByText(/next in \d+ min, then after 1 h/).waitFor();
    await shot(page, "delivery-failed");
    receiver.fail(false);
    await page.getByRole("button", { name: "Redeliver now" }).click();
    const attempt2 = page.getByRole("article", { name: "Attempt 2" });
    await attempt2.locator(".badge-good", { hasText: "200" }).waitFor();
    await page.locator(".title-row .badge", { hasText: "delivered" }).waitFor();
    await shot(page, "delivery-redelivered");

    // Filters narrow the log, and the keyboard alone reaches a delivery.
    await nav(page).getByRole("link", { name: "Delivery log" }).click();
    await page.getByRole("form", { name: "Filters" }).getByLabel("Event type").fill("turn.failed");
    await page.getByRole("button", { name: "Filter" }).click();
    await until("the filtered log", async () => (await page.locator("tr[data-delivery]").count()) === 1);
    await page.locator(`tr:has-text("turn.failed")`).waitFor();
    await page.getByRole("link", { name: "Clear" }).click();
    await until("the whole log", async () => (await page.locator("tr[data-delivery]").count()) === 2);
    let focused = "";
    for (let presses = 0; presses < 40 && !focused.startsWith("#/deliveries/dlv_"); presses++) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(() => document.activeElement?.getAttribute("href") ?? "");
    }
    assert.match(focused, /^#\/deliveries\/dlv_/, "Tab never reached a delivery");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Attempts, newest first" }).waitFor();

    // The destination: edited, a test ping shown inline, charts, and a replay counted first.
    await page.getByRole("link", { name: "billing receiver" }).click();
    await page.getByRole("link", { name: "Edit" }).click();
    assert.equal(await page.getByLabel("Retry schedule").inputValue(), "600, 3600");
    await page.getByLabel("Name").fill("billing receiver (edited)");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("heading", { name: "billing receiver (edited)" }).waitFor();
    await page.getByRole("button", { name: "Send test ping" }).click();
    await page.getByRole("heading", { name: "Test ping: delivered" }).waitFor();
    await page.locator(".ping-result").getByText('"type": "webhook.test"').waitFor();
    const charts = page.getByRole("region", { name: "Charts" });
    await charts.locator("[data-chart=attempts] canvas").waitFor();
    await charts.locator("[data-chart=latency] canvas").waitFor();
    await charts.getByText(/^[3-9] attempts$/).waitFor();
    await charts.getByRole("button", { name: "Last week" }).click();
    await charts.getByRole("button", { name: "Last week", pressed: true }).waitFor();
    const replay = page.getByRole("region", { name: "Replay" });
    await replay.getByLabel("Deliveries that are").selectOption("delivered");
    await replay.getByRole("button", { name: "Count (dry run)" }).click();
    assert.equal(await replay.locator("[data-replay-count]").textContent(), "2");
    const before = receiver.received.length;
    await replay.getByRole("button", { name: "Replay 2" }).click();
    await replay.getByText("2 of 2 sent").waitFor({ timeout: 20000 });
    await until("the replayed requests", () => receiver.received.length >= before + 2);
    await shot(page, "destination");

    // Pause and resume; rotate the secret, shown once.
    await page.getByRole("button", { name: "Pause" }).click();
    await page.locator(".title-row .badge", { hasText: "paused" }).waitFor();
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator(".title-row .badge", { hasText: "enabled" }).waitFor();
    await page.getByRole("button", { name: "Rotate secret" }).click();
    await page.getByRole("button", { name: "Rotate", exact: true }).click();
    await page.getByText("you will not see this again").waitFor();
    assert.notEqual(await page.locator("[data-secret]").textContent(), secret);

    // Test mode: switched on, a publish is intercepted, signed, and shown; nothing is sent.
    await nav(page).getByRole("link", { name: "Test mode" }).click();
    await page.getByText("Nothing intercepted.").waitFor();
    await page.getByRole("switch", { checked: false }).click();
    await page.locator(".title-row .badge", { hasText: "on" }).waitFor();
    const sent = receiver.received.length;
    const caught = await publish({ type: "turn.completed", stream: "sess_browser", data: { test: true } });
    const intercepted = page.getByRole("article", { name: "Attempt 1" });
    await intercepted.getByText(`"id": "${caught.id}"`).waitFor();
    await intercepted.getByText("webhook-signature").waitFor();
    await intercepted.locator(".badge", { hasText: "intercepted" }).waitFor();
    assert.equal(receiver.received.length, sent, "test mode sent a request");
    await shot(page, "test-mode");
    await page.getByRole("switch", { checked: true }).click();
    await page.locator(".title-row .badge", { hasText: "off" }).waitFor();
    await page.getByRole("switch", { checked: false }).waitFor();
    await nav(page).getByRole("link", { name: "Delivery log" }).click();
    await page.locator("tr[data-delivery]", { hasText: "intercepted" }).waitFor();
    await page.screenshot({ path: `${screenshots}/delivery-log-full.png`, clip: { x: 0, y: 0, width: 1280, height: 560 } });

    // Delete, confirmed first.
    await nav(page).getByRole("link", { name: "Destinations" }).click();
    await page.getByRole("heading", { name: "Destinations" }).waitFor();
    await page.getByRole("link", { name: "billing receiver" }).click();
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete for good" }).click();
    await page.getByText("No destinations yet").waitFor();

    // Signing out forgets the key.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(errors, [], "the page printed errors");
  } finally {
    await browser.close();
    await receiver.close();
  }
});

test("on a phone: long URLs and large bodies stay inside the screen", async () => {
  const receiver = await startReceiver();
  const browser = await launch();
  try {
    assert.equal((await call("POST", "/v1/test-mode/disable")).status, 200);
    const longUrl = `${receiver.url}/${"segment-".repeat(40)}end?query=${"v".repeat(120)}`;
    const made = await call("POST", "/v1/destinations", { url: longUrl, types: ["phone.*"] });
    assert.equal(made.status, 201, made.text);
    const destination = made.body;
    await publish({ type: "phone.check", data: { big: "y".repeat(20000), nested: { list: [1, 2, 3] } } });
    await until("the large delivery", () => receiver.received.length === 1);

    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await signIn(page, key);
    const row = page.locator(`tr:has-text("phone.check")`);
    await row.locator(".badge", { hasText: "delivered" }).waitFor();
    // Every element's right edge is on the screen (a scrolling table keeps its overflow).
    const fits = () =>
      page.evaluate(() =>
        [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > 391)
          .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}px`),
      );
    assert.deepEqual(await fits(), [], "the delivery log is wider than the phone");
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390);
    await shot(page, "phone-delivery-log");
    await row.getByRole("link", { name: "phone.check" }).click();
    await page.getByRole("article", { name: "Attempt 1" }).waitFor();
    assert.deepEqual(await fits(), [], "the delivery is wider than the phone");
    await shot(page, "phone-delivery");
    await page.goto(`${base}/#/destinations/${destination.id}`);
    await page.getByRole("region", { name: "Charts" }).locator("canvas").first().waitFor();
    assert.deepEqual(await fits(), [], "the destination is wider than the phone");
    await shot(page, "phone-destination");
    await nav(page).getByRole("link", { name: "Destinations" }).click();
    await page.locator("table.list").waitFor();
    assert.deepEqual(await fits(), [], "the destination list is wider than the phone");
    await shot(page, "phone-destinations");
    assert.deepEqual(errors, [], "the page printed errors");
  } finally {
    await browser.close();
    await receiver.close();
  }
});

test("a key revoked while the page is open signs the page out, saying why", async () => {
  const browser = await launch();
  try {
    const made = await call("POST", "/v1/api-keys");
    assert.equal(made.status, 201, made.text);
    const second = made.body;
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await signIn(page, second.key);
    await page.getByRole("heading", { name: "Delivery log" }).waitFor();
    assert.equal((await call("DELETE", `/v1/api-keys/${second.id}`)).status, 204);
    await page.getByRole("alert").getByText("no longer accepts that API key").waitFor();
    await page.getByLabel("API key").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.ok(errors.length > 0 && errors.every((e) => / 401 /.test(e)), errors.join("\n"));
  } finally {
    await browser.close();
  }
});
