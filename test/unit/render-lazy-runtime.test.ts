/**
 * The renderer loads Handlebars (even its runtime, ~25 ms of CPU) only for the first text holding a `{{`:
 * a run whose steps render nothing must not pay for it before its first command.
 * Its own file: the module state (loaded or not) is per test file.
 */
import { describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/render/index.js';
import { compilerLoaded, runtimeLoaded } from '../../src/render/handlebars-lib.js';

describe('Handlebars is loaded on the first text to render', () => {
  it('literal values and strings load nothing; the first `{{` loads the runtime and renders', () => {
    const renderer = createRenderer({ templateDirs: [] });
    expect(renderer.renderValue({ argv: ['true', 'no braces'], n: 3, flag: true }, {}, 'step')).toEqual({ argv: ['true', 'no braces'], n: 3, flag: true });
    expect(renderer.renderString('plain text', {}, 's')).toBe('plain text');
    expect(runtimeLoaded()).toBe(false);
    expect(compilerLoaded()).toBe(false);

    expect(renderer.renderString('port={{port}}', { port: 5432 }, 's')).toBe('port=5432');
    expect(runtimeLoaded()).toBe(true);
    // Helpers are registered on the lazily made environment as on an eager one.
    expect(renderer.renderValue({ a: '{{upper name}}', n: '{{port}}' }, { name: 'db1', port: 7 }, 'v')).toEqual({ a: 'DB1', n: 7 });
  });
});
