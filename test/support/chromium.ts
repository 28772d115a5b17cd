/**
 * Renders a local HTML file to a PNG with Debian's headless Chromium, as a person would see it. The
 * flags keep it off the network (this machine has none) and out of the user's profile.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';

export async function screenshot(htmlFile: string, size = '900,1400'): Promise<Buffer> {
  const profile = await mkdtemp(join(tmpdir(), 'pgplay-chromium-'));
  const png = join(profile, 'page.png');
  try {
    const r = await execa(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--user-data-dir=${profile}`, `--window-size=${size}`, `--screenshot=${png}`, `file://${htmlFile}`],
      { reject: false, timeout: 60_000 },
    );
    if (r.exitCode !== 0) throw new Error(`chromium exited ${r.exitCode}: ${r.stderr.slice(-1000)}`);
    return await readFile(png);
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}
