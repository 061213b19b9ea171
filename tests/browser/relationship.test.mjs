// Drives the person's web page in headless Chromium through a relationship: cast, accept the
// offer, see the vendor's order confirmed without reloading, send a message, see the vendor's
// reply arrive (the test's vendor answers it), mark it read.
// Usage: node relationship.test.mjs <login-url> <screenshot.png>
import { browser, fail, loginUrl, reportOnFailure, run, screenshot } from "./harness.mjs";

await run(async () => {
  const page = await browser.newPage();
  reportOnFailure(page, ["relationships", "intents"]);
  await page.goto(loginUrl);
  await page.waitForSelector("#app", { state: "visible", timeout: 10000 });
  await page.waitForSelector("#category option[value=electronics]", { state: "attached", timeout: 10000 });
  await page.selectOption("#category", "electronics");
  await page.fill("#text", "A used ThinkPad");
  await page.fill("#max-price", "400");
  const loads = [];
  page.on("load", () => loads.push(Date.now()));
  await page.click("#cast-button");
  await page.waitForSelector(".intent .offer .accept", { timeout: 20000 });
  await page.click(".intent .offer .accept");
  // The vendor's node confirms with an order; the person's node countersigns: "agreed".
  await page.waitForSelector('.relationship[data-stage="agreed"]', { timeout: 20000 });
  await page.waitForSelector('.relationship .step[data-kind="order"]', { timeout: 10000 });
  await page.waitForSelector('.intent[data-status="withdrawn"]', { timeout: 10000 });
  await page.fill(".relationship .message-text", "Does it come with a charger?");
  await page.click(".relationship .message-form button");
  await page.waitForSelector(".relationship .msg.mine", { timeout: 10000 });
  const reply = await page.waitForSelector(".relationship .msg.from-vendor", { timeout: 20000 });
  const text = await reply.textContent();
  if (!text.includes("65 W")) await fail("the vendor's reply reads: " + text);
  await page.waitForSelector(".relationship .unread", { timeout: 10000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.click('.rel-action[data-action="read"]');
  await page.waitForSelector(".relationship .unread", { state: "detached", timeout: 10000 });
  if (loads.length) await fail("the page reloaded");
  console.log("ok: accepted, order agreed live, message sent, reply shown, read");
});
