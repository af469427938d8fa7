/**
 * PNG export of a report's figures (heatmaps, curves, time split) for papers and slides:
 * the page is opened in a headless Chromium driven by playwright-core, and each element
 * marked `data-png="NAME"` is screenshotted to NAME.png. Chromium is the system's (on
 * Debian/Ubuntu `apt-get install chromium`); nothing is downloaded.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";

const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/**
 * The Chromium to use: `explicit`, else $CYCLEQD_CHROMIUM, else the first system one found.
 * Throws, saying how to get one, when there is none.
 */
export function findChromium(explicit?: string): string {
  const chosen = explicit ?? process.env.CYCLEQD_CHROMIUM;
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`no browser at ${chosen}; give the path of Chromium`);
    return chosen;
  }
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      "PNG export needs Chromium and none was found (looked for /usr/bin/chromium and Chrome); install it (Debian/Ubuntu: apt-get install chromium) or pass --browser PATH",
    );
  }
  return found;
}

/** Launches headless Chromium (its own sandbox off as root, where it cannot start). */
export async function launchChromium(explicit?: string) {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: findChromium(explicit),
    headless: true,
    chromiumSandbox: process.getuid?.() !== 0,
  });
}

/**
 * Writes one PNG per `data-png` figure of the report page `html` into `dir` (created) and
 * returns their paths. `scale` is the device pixel ratio (2 for print quality).
 */
export async function exportPngs(
  html: string,
  dir: string,
  opts: { browser?: string; scale?: number } = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const browser = await launchChromium(opts.browser);
  try {
    const page = await browser.newPage({
      viewport: { width: 1400, height: 1000 },
      deviceScaleFactor: opts.scale ?? 2,
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.setContent(html, { waitUntil: "load" });
    await page.waitForSelector("[data-png]");
    if (errors.length) throw new Error(`the report page failed in Chromium: ${errors.join("; ")}`);
    const written: string[] = [];
    for (const el of await page.$$("[data-png]")) {
      const name = (await el.getAttribute("data-png")) ?? "figure";
      const path = resolve(join(dir, `${name.replace(/[^\w.-]/g, "_")}.png`));
      await el.screenshot({ path });
      written.push(path);
    }
    return written;
  } finally {
    await browser.close();
  }
}
