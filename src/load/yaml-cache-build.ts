/**
 * `npm run build`: parse every shipped playbook once and keep its data as JSON (see yaml-cache.ts).
 * Only a playbook that parses without a problem and whose data survives JSON unchanged is kept;
 * any other is parsed at run time, with its errors placed as before.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseYaml } from './yaml.js';
import { parsedYamlFile } from './yaml-cache.js';

function yamlFilesUnder(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? yamlFilesUnder(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : []));
}

export function writeParsedYaml(dir: string, playbooksDir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let count = 0;
  for (const file of yamlFilesUnder(playbooksDir)) {
    const text = readFileSync(file, 'utf8');
    let data: unknown;
    try {
      data = parseYaml(text, file).data;
    } catch {
      continue;
    }
    const json = JSON.stringify(data);
    if (!isDeepStrictEqual(JSON.parse(json), data)) continue;
    const target = parsedYamlFile(dir, text);
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, json);
    renameSync(temp, target);
    count++;
  }
  return `parsed ${count} shipped playbooks to ${dir}\n`;
}
