/**
 * The playbooks that ship with pgplay (the package's playbooks/ directory), usable by name:
 * `pgplay run nightly-backup.yml` or `pgplay run nightly-backup` finds the shipped one when no such
 * file exists where the user is. A file of that name in the current directory always wins.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { yamlLib } from '../load/yaml-lib.js';
import { PgplayError } from '../core/errors.js';
import { SHIPPED_PLAYBOOKS } from '../core/paths.js';
import type { ParamDef } from '../model/playbook.js';

export interface PlaybookChoice {
  /** The file to run, as the loader gets it. */
  file: string;
  /** Found among the shipped playbooks, not in the current directory. */
  shipped: boolean;
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile();
const hasYamlExtension = (name: string) => /\.ya?ml$/i.test(name);

/** A bare name (no directory part) may name a shipped playbook; a path never does. */
function isBareName(arg: string): boolean {
  return arg !== '' && !arg.includes('/') && arg !== '.' && arg !== '..';
}

export function choosePlaybook(arg: string, cwd: string = process.cwd(), shippedDir: string = SHIPPED_PLAYBOOKS): PlaybookChoice {
  if (isFile(resolve(cwd, arg)) || !isBareName(arg)) return { file: arg, shipped: false };
  const withExtension = hasYamlExtension(arg) ? arg : `${arg}.yml`;
  if (withExtension !== arg && isFile(resolve(cwd, withExtension))) return { file: withExtension, shipped: false };
  const shipped = join(shippedDir, withExtension);
  if (isFile(shipped)) return { file: shipped, shipped: true };
  const names = shippedPlaybookFiles(shippedDir).map((f) => basename(f, extname(f)));
  throw new PgplayError({
    code: 'USAGE',
    message: `no playbook ${arg}: no such file in ${cwd}, and pgplay ships none of that name`,
    expected: `a playbook file, or a shipped playbook: ${names.join(', ')}`,
    hint: 'pgplay playbooks lists the shipped playbooks and their params',
  });
}

export function shippedPlaybookFiles(dir: string = SHIPPED_PLAYBOOKS): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter(hasYamlExtension)
    .sort()
    .map((f) => join(dir, f))
    .filter(isFile);
}

export interface ShippedPlaybook {
  name: string;
  file: string;
  description: string;
  params: Record<string, { type: ParamDef['type']; required: boolean; default?: ParamDef['default']; enum?: ParamDef['enum']; secret?: boolean; description?: string }>;
}

/** What `pgplay playbooks` shows: each shipped playbook's name, description and params. */
export function describeShippedPlaybooks(dir: string = SHIPPED_PLAYBOOKS): ShippedPlaybook[] {
  return shippedPlaybookFiles(dir).map((file) => {
    const doc = (yamlLib().parse(readFileSync(file, 'utf8')) ?? {}) as { name?: string; description?: string; params?: Record<string, ParamDef> };
    const params: ShippedPlaybook['params'] = {};
    for (const [name, def] of Object.entries(doc.params ?? {})) {
      params[name] = {
        type: def.type,
        required: def.required === true,
        ...(def.default !== undefined ? { default: def.default } : {}),
        ...(def.enum ? { enum: def.enum } : {}),
        ...(def.secret ? { secret: true } : {}),
        ...(def.description ? { description: def.description.trim() } : {}),
      };
    }
    return { name: basename(file, extname(file)), file, description: (doc.description ?? '').trim(), params };
  });
}
