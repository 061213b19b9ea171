// Drives the person's web page in headless Chromium through reputation and groups: join a
// group another person started and see the count rise, start a group from the cast form,
// see a vendor's rating next to its offer, accept it, review the fulfilled order, and see
// the rating change with the order marked as the person's own.
// Usage: node reputation.test.mjs <login-url> <screenshot.png>
import { browser, fail, loginUrl, reportOnFailure, run, screenshot } from "./harness.mjs";

await run(async () => {
  const page = await browser.newPage();
  reportOnFailure(page, ["groups", "intents", "relationships"]);
  await page.goto(loginUrl);
  await page.waitForSelector("#app", { state: "visible", timeout: 10000 });
  const loads = [];
  page.on("load", () => loads.push(Date.now()));

  // Join the group someone else started: the count rises, Join becomes Leave.
  await page.waitForSelector('.group[data-members="1"] .group-join', { timeout: 20000 });
  await page.click('.group[data-members="1"] .group-join');
  await page.waitForSelector('.group[data-members="2"] .group-leave', { timeout: 20000 });

  // Start a group of four from the cast form.
  await page.waitForSelector("#category option[value=travel]", { state: "attached", timeout: 10000 });
  await page.selectOption("#category", "travel");
  await page.fill("#text", "A minibus for four from the airport on 3 May");
  await page.fill("#max-price", "20");
  await page.fill("#group-size", "4");
  await page.click("#cast-button");
  await page.waitForFunction(() => [...document.querySelectorAll(".group .members")].some((m) => m.textContent === "1 of 4 joined"), null, { timeout: 20000 });

  // A vendor with one review (5 stars from a buyer without a history): its rating is next
  // to its offer.
  await page.selectOption("#category", "electronics");
  await page.fill("#text", "A used ThinkPad");
  await page.fill("#max-price", "400");
  await page.click("#cast-button");
  const rated = await page.waitForSelector('.intent[data-status="open"] .offer .rating[data-reviews="1"]', { timeout: 20000 });
  const before = await rated.textContent();
  if (!before.includes("3.7★") || !before.includes("1 reviews, 0 proven")) await fail("the rating reads: " + before);
  await page.click('.intent[data-status="open"] .offer .accept');
  await page.waitForSelector('.relationship[data-stage="agreed"]', { timeout: 20000 });

  // The test's vendor fulfils the order: the review form appears; publish 4 stars.
  await page.waitForSelector(".relationship .review-form", { timeout: 20000 });
  await page.selectOption(".relationship .review-rating", "4");
  await page.fill(".relationship .review-text", "Arrived in two days, as described.");
  await page.click(".relationship .review-button");
  const after = await page.waitForSelector('.offer .rating[data-reviews="2"] .yours', { timeout: 20000 });
  const mine = await after.textContent();
  if (!mine.includes("you: 1 order, rated 4★")) await fail("the person's own order reads: " + mine);
  const score = await page.textContent('.offer .rating[data-reviews="2"] .stars');
  if (score !== "3.5★") await fail("the score after the review reads: " + score);
  await page.screenshot({ path: screenshot, fullPage: true });
  if (loads.length) await fail("the page reloaded");
  console.log("ok: joined a group, started one, saw the rating, reviewed, saw it change");
});
