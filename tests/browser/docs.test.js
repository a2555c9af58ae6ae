// The API reference at /docs, in a real browser: the page draws the document from the
// binary alone (every request stays on the server's origin) and shows the operations.

import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, screenshots } from "./browser.js";

const base = process.env.HOOKLINE_BASE;

test("the reference page shows the /v1/events operations, fetching nothing elsewhere", async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const elsewhere = [];
    // A request the page's policy blocks fails in the browser and never leaves it.
    page.on("requestfinished", (request) => {
      const url = request.url();
      if (!url.startsWith(base) && !url.startsWith("data:") && !url.startsWith(`blob:${base}`)) {
        elsewhere.push(request.url());
      }
    });
    const blocked = [];
    page.on("requestfailed", (request) => blocked.push(`${request.url()}: ${request.failure().errorText}`));
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${base}/docs`);
    // Redoc shows each operation's method and path in its right-hand panel.
    const publish = page.getByText("/v1/events", { exact: true }).first();
    await publish.waitFor({ timeout: 20000 });
    await page.locator("h2", { hasText: "Publish an event" }).first().waitFor();
    await page.screenshot({ path: `${screenshots}/docs.png`, fullPage: false });
    assert.deepEqual(elsewhere, [], "requests left the server's origin");
    assert.ok(blocked.every((reason) => reason.endsWith(": csp")), blocked.join(", "));
    assert.deepEqual(errors, [], "the page threw");
  } finally {
    await browser.close();
  }
});
