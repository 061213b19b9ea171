// What every page script shares: headless Chromium, and failing with what the page showed.
import { chromium } from "playwright-core";

export const [loginUrl, screenshot] = process.argv.slice(2);

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// The page whose sections a failure reports, once the script has one.
let shown = { page: null, sections: [] };
export function reportOnFailure(page, sections) { shown = { page, sections }; }

// Prints FAIL with the message and the text of the sections, closes the browser, exits 1.
export async function fail(message) {
  const { page, sections } = shown;
  const seen = page ? await page.evaluate((ids) => Object.fromEntries(["error", ...ids].map((id) =>
    [id, document.getElementById(id)?.innerText ?? null])), sections).catch(() => null) : null;
  console.error("FAIL: " + message + (seen ? "\npage: " + JSON.stringify(seen) : ""));
  await browser.close();
  process.exit(1);
}

// Runs `body`, failing with its error; closes the browser.
export async function run(body) {
  try { await body(); } catch (e) { await fail(e.stack || String(e)); }
  await browser.close();
}
