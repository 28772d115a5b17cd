/**
 * What templates and expressions see (src/engine/scope.ts), above all `hosts`: every host with its facts
 * and registered values, as they are when the scope is made, although the view is built again only when
 * a host's facts or registered values are replaced.
 */
import { describe, expect, it } from 'vitest';
import { globalScope, hostScope, type ScopeSources } from '../../src/engine/scope.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { Host, Inventory } from '../../src/model/inventory.js';

function sources(): ScopeSources {
  const host = (name: string, role: string) => ({ name, role, address: '127.0.0.1', vars: { own: name } }) as unknown as Host;
  return {
    params: { p: 1 },
    vars: { v: 'x' },
    inventory: { cluster: 'c' } as unknown as Inventory,
    hosts: { db1: host('db1', 'primary'), db2: host('db2', 'standby') },
    facts: { db1: { running: true } as HostFacts },
    registered: {},
  };
}

const hostsOf = (scope: Record<string, unknown>) => scope.hosts as Record<string, { role: string; facts: Record<string, unknown>; registered: Record<string, unknown> }>;

describe('scope hosts view', () => {
  it('gives every host with its facts and registered values', () => {
    const hosts = hostsOf(hostScope(sources(), 'db2'));
    expect(hosts.db1).toMatchObject({ role: 'primary', facts: { running: true }, registered: {} });
    expect(hosts.db2).toMatchObject({ role: 'standby', facts: {}, registered: {} });
  });

  it('is the same view while nothing changed, and a new one once a host\'s facts are replaced', () => {
    const src = sources();
    const first = hostsOf(globalScope(src));
    expect(hostsOf(hostScope(src, 'db1'))).toBe(first);
    src.facts.db2 = { running: false } as HostFacts;
    const second = hostsOf(globalScope(src));
    expect(second).not.toBe(first);
    expect(second.db2!.facts).toEqual({ running: false });
    src.facts.db1 = { running: false } as HostFacts;
    expect(hostsOf(globalScope(src)).db1!.facts).toEqual({ running: false });
  });

  it('sees registered values as they are registered, whether a host gets its first or another one', () => {
    const src = sources();
    expect(hostsOf(globalScope(src)).db2!.registered).toEqual({});
    src.registered.db2 = { build: { skipped: true } };
    expect(hostsOf(globalScope(src)).db2!.registered).toEqual({ build: { skipped: true } });
    src.registered.db2.slot = { changed: true };
    expect(hostsOf(hostScope(src, 'db1')).db2!.registered).toEqual({ build: { skipped: true }, slot: { changed: true } });
  });

  it('is not changed by whoever holds it', () => {
    const src = sources();
    const hosts = hostsOf(globalScope(src));
    expect(() => ((hosts as Record<string, unknown>).db3 = {})).toThrow(TypeError);
    expect(() => ((hosts.db1 as unknown as Record<string, unknown>).role = 'standby')).toThrow(TypeError);
    expect(hostsOf(globalScope(src)).db1!.role).toBe('primary');
  });

  it('a run of its own has a view of its own', () => {
    const a = sources();
    const b = sources();
    b.facts.db1 = { running: false } as HostFacts;
    expect(hostsOf(globalScope(a)).db1!.facts).toEqual({ running: true });
    expect(hostsOf(globalScope(b)).db1!.facts).toEqual({ running: false });
  });
});
