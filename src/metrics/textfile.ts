/**
 * Prometheus text exposition for node_exporter's textfile collector: gauges with HELP and TYPE, label
 * values escaped, and the file replaced atomically (a temp file in the same directory, fsynced, then
 * renamed), so the collector never reads half a file.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type Labels = Record<string, string>;

export interface Family {
  name: string;
  help: string;
  samples: Array<{ labels: Labels; value: number }>;
}

/** Collects samples by family, in the order families first appear. */
export class MetricSet {
  private readonly families = new Map<string, Family>();

  gauge(name: string, help: string, labels: Labels, value: number | boolean | null | undefined): void {
    if (value === null || value === undefined) return;
    const v = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    if (!Number.isFinite(v)) return;
    let family = this.families.get(name);
    if (!family) {
      family = { name, help, samples: [] };
      this.families.set(name, family);
    }
    family.samples.push({ labels, value: v });
  }

  format(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} gauge`);
      for (const s of f.samples) out.push(`${f.name}${formatLabels(s.labels)} ${s.value}`);
    }
    return out.join('\n') + '\n';
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** Replaces `file` with `text` atomically; mode 0644 so node_exporter (another user) can read it. */
export async function writeTextfile(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
