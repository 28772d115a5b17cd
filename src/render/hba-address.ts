/**
 * pg_hba.conf details that templates cannot work out themselves: an address column needs a CIDR
 * mask for an IP literal (a bare IP makes PostgreSQL expect a netmask column and refuse the file),
 * while a host name must stay bare.
 */
import { isIP } from 'node:net';

/** 10.0.0.12 -> 10.0.0.12/32, ::1 -> ::1/128; CIDRs, host names and keywords (all, samenet) unchanged. */
export function hbaAddress(address: string): string {
  const a = address.trim();
  if (a.includes('/')) return a;
  const family = isIP(a.replace(/^\[|\]$/g, ''));
  if (family === 4) return `${a}/32`;
  if (family === 6) return `${a.replace(/^\[|\]$/g, '')}/128`;
  return a;
}
