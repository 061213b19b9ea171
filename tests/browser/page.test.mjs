// Drives the person's web page in headless Chromium: log in with the link, cast an intent
// through the form, see a vendor's offer appear without reloading, withdraw it.
// Usage: node page.test.mjs <login-url> <screenshot.png>
import { browser, fail, loginUrl, reportOnFailure, run, screenshot } from "./harness.mjs";

await run(async () => {
  // Without the login link the page shows no data and the API refuses.
  const stranger = await browser.newPage();
  const base = loginUrl.split("#")[0];
  await stranger.goto(base);
  await stranger.waitForSelector("#login", { state: "visible", timeout: 10000 });
  if (await stranger.isVisible("#app")) await fail("the app is visible without a token");
  const status = await stranger.evaluate(async () => (await fetch("/api/v1/status")).status);
  if (status !== 401) await fail("the API answered " + status + " without a token");

  const page = await browser.newPage();
  await page.goto(loginUrl);
  await page.waitForSelector("#app", { state: "visible", timeout: 10000 });
  if (page.url().includes("token=")) await fail("the token stays in the address bar");
  await page.waitForSelector("#category option[value=travel]", { state: "attached", timeout: 10000 });
  await page.selectOption("#category", "travel");
  await page.selectOption("#subcategory", "lodging");
  await page.fill("#text", "A quiet room in Coimbra");
  await page.fill("#max-price", "150");
  await page.check('[data-term="no-tracking"]');
  const loads = [];
  page.on("load", () => loads.push(Date.now()));
  await page.click("#cast-button");
  await page.waitForSelector(".intent .offer", { timeout: 20000 });
  if (loads.length) await fail("the page reloaded");
  const total = await page.textContent(".intent .offer .total");
  if (!total.includes("EUR")) await fail("offer total missing: " + total);
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.click(".intent .withdraw");
  await page.waitForSelector('.intent[data-status="withdrawn"]', { timeout: 10000 });
  console.log("ok: cast, offer shown live (" + total.trim() + "), withdrawn");
});
