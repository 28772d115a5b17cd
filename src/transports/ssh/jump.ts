import { PgplayError } from '../../core/errors.js';
import type { Host } from '../../model/inventory.js';

/**
 * Resolves `connection.jump` (ProxyJump): an inventory host name, or `[user@]address[:port]`
 * (IPv6 in brackets, `[::1]:22`). An address-only jump host borrows the credentials and known_hosts
 * of the host being reached, as ssh's ProxyJump does with the same config; it never becomes
 * anyone and never jumps further.
 */
export function resolveJumpHost(spec: string, hosts: Record<string, Host>, from: Host): Host {
  const named = hosts[spec];
  if (named) return named;
  const m = /^(?:([^@\s]+)@)?(?:\[([^\]\s]+)\]|([^:@\s[\]]+))(?::(\d{1,5}))?$/.exec(spec.trim());
  const port = m?.[4] === undefined ? undefined : Number(m[4]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new PgplayError({
      code: 'SEMANTIC',
      host: from.name,
      message: `connection.jump "${spec}" of ${from.name} is neither an inventory host nor [user@]address[:port]`,
      expected: `one of ${Object.keys(hosts).join(', ') || '(no hosts)'} or [user@]address[:port]`,
    });
  }
  const { jump: _jump, become: _become, ...connection } = from.connection;
  return {
    ...from,
    name: spec,
    address: m[2] ?? m[3]!,
    connection: { ...connection, transport: 'ssh', user: m[1] ?? from.connection.user, port: port ?? 22 },
  };
}
