/**
 * postgresql.conf syntax, as much as pgplay needs to tell which settings a file sets, and whether a
 * value written in a file is the value a server reports (units and boolean spellings differ).
 */

/** `name = value` lines of a postgresql.conf-style file; the last one of a name wins, as in the server. */
export function parseSettings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.$-]*)\s*=?\s*(.*)$/.exec(raw);
    if (!m || raw.trim().startsWith('#')) continue;
    const name = m[1]!.toLowerCase();
    // include, include_dir and include_if_exists are directives, not settings.
    if (name === 'include' || name === 'include_dir' || name === 'include_if_exists') continue;
    out.set(name, parseValue(m[2]!));
  }
  return out;
}

/** A value as the server reads it: a quoted string unquoted ('' and \' are quotes), else up to a comment. */
function parseValue(rest: string): string {
  const text = rest.trim();
  if (!text.startsWith("'")) return text.replace(/\s*#.*$/, '').trim();
  let value = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      value += text[++i];
    } else if (c === "'") {
      if (text[i + 1] === "'") {
        value += "'";
        i++;
      } else break;
    } else value += c;
  }
  return value;
}

/** What pg_settings says about a setting. */
export interface ServerSetting {
  name: string;
  /** In the setting's unit (pg_settings.setting). */
  setting: string;
  unit: string | null;
  vartype: string;
  /** SHOW's form (current_setting), e.g. 32MB. */
  shown: string;
}

const TRUE = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const FALSE = new Set(['off', 'false', 'no', '0', 'f', 'n']);

const MEMORY: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };
const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A unit as pg_settings gives it ("8kB", "kB", "ms", "min") in bytes or milliseconds. */
function unitFactor(unit: string): number | undefined {
  const m = /^(\d*)\s*([A-Za-z]+)$/.exec(unit.trim());
  if (!m) return undefined;
  const base = MEMORY[m[2]!.toLowerCase()] ?? TIME[m[2]!.toLowerCase()];
  return base === undefined ? undefined : base * (m[1] ? Number(m[1]) : 1);
}

/** A numeric value in base units (bytes or ms); a bare number is in the setting's own unit. */
function inBaseUnits(value: string, settingUnit: string | null): number | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!m[2]) return settingUnit ? n * (unitFactor(settingUnit) ?? NaN) : n;
  const f = unitFactor(m[2]);
  return f === undefined ? undefined : n * f;
}

/** Whether a value written in a file is what the server runs with (false when it cannot tell: a restart is assumed needed). */
export function sameValue(fileValue: string, server: ServerSetting): boolean {
  const v = fileValue.trim();
  if (v === server.shown || v === server.setting) return true;
  const lower = v.toLowerCase();
  if (server.vartype === 'bool') return (TRUE.has(lower) && server.setting === 'on') || (FALSE.has(lower) && server.setting === 'off');
  if (server.vartype === 'enum' || server.vartype === 'string') return lower === server.setting.toLowerCase();
  const a = inBaseUnits(v, server.unit);
  const b = inBaseUnits(server.setting, server.unit);
  return a !== undefined && b !== undefined && Number.isFinite(a) && a === b;
}
