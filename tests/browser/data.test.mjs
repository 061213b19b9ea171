// Drives the person's web page in headless Chromium through their data: fill the vault,
// accept an offer, share two fields with the vendor for delivery, see the vendor's signed
// receipt, see the vendor in "who holds your data", revoke, see the deletion receipt.
// Usage: node data.test.mjs <login-url> <screenshot.png>
import { browser, fail, loginUrl, reportOnFailure, run, screenshot } from "./harness.mjs";

await run(async () => {
  const page = await browser.newPage();
  reportOnFailure(page, ["vault", "holdings", "relationships"]);
  await page.goto(loginUrl);
  await page.waitForSelector("#app", { state: "visible", timeout: 10000 });
  const loads = [];
  page.on("load", () => loads.push(Date.now()));
  for (const [name, value] of [["email", "pat@example.org"], ["postal-address", "1 Elm Street"], ["phone", "+1 555 0100"]]) {
    await page.fill("#vault-name", name);
    await page.fill("#vault-value", value);
    await page.click("#vault-save");
    await page.waitForSelector(`.vault-field[data-name="${name}"]`, { timeout: 10000 });
  }
  // Edit a value in place.
  await page.fill('.vault-field[data-name="postal-address"] .vault-edit', "2 Oak Avenue");
  await page.click('.vault-field[data-name="postal-address"] .vault-update');
  await page.waitForFunction(() => document.querySelector('.vault-field[data-name="postal-address"] .vault-edit')?.value === "2 Oak Avenue", null, { timeout: 10000 });

  await page.waitForSelector("#category option[value=electronics]", { state: "attached", timeout: 10000 });
  await page.selectOption("#category", "electronics");
  await page.fill("#text", "A used ThinkPad");
  await page.click("#cast-button");
  await page.waitForSelector(".intent .offer .accept", { timeout: 20000 });
  await page.click(".intent .offer .accept");
  await page.waitForSelector('.relationship[data-stage="agreed"]', { timeout: 20000 });

  await page.check('.grant-form .grant-field[data-field="email"]');
  await page.check('.grant-form .grant-field[data-field="postal-address"]');
  await page.selectOption(".grant-form .grant-purpose", "delivery");
  await page.click(".grant-form .grant-button");
  const held = await page.waitForSelector('#holdings .grant[data-state="held"]', { timeout: 20000 });
  const shown = await held.textContent();
  if (!shown.includes("email, postal-address") || !shown.includes("receipt: held")) await fail("the holding reads: " + shown);
  await page.waitForSelector('.relationship .step[data-kind="receipt"][data-status="held"]', { timeout: 10000 });
  await page.screenshot({ path: screenshot, fullPage: true });

  await page.click("#holdings .revoke");
  await page.waitForSelector('#holdings .grant[data-state="deleted"]', { timeout: 20000 });
  await page.waitForSelector('.relationship .step[data-kind="receipt"][data-status="deleted"]', { timeout: 10000 });
  if (await page.$("#holdings .revoke")) await fail("a deleted grant still offers Revoke");
  if (loads.length) await fail("the page reloaded");
  console.log("ok: vault filled and edited, shared, receipt held, revoked, deletion receipt");
});
