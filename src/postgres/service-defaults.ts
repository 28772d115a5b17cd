/**
 * Which service manager runs a host's server, and its systemd unit: the inventory's
 * `postgres.service` / `postgres.serviceUnit` (cluster-wide, overridable per host), else the layout's
 * default. A drill host defaults to pg_ctl whatever its layout: the drill's restored copy lives in a
 * directory of its own that no Debian cluster (no /etc/postgresql/<version>/<cluster>) describes.
 */
import type { Layout, Role, ServiceManager } from '../model/inventory.js';

export interface ServiceInput {
  service?: ServiceManager;
  serviceUnit?: string;
  layout?: Layout;
  role: Role;
  version: number;
  cluster?: string;
  host: string;
}

export function defaultServiceUnit(layout: Layout | undefined): string {
  return layout === 'debian' ? 'postgresql@{{version}}-{{cluster}}' : 'postgresql-{{version}}';
}

export function resolveService(input: ServiceInput): { service: ServiceManager; serviceUnit?: string } {
  const service = input.service ?? (input.layout === 'debian' && input.role !== 'drill' ? 'pg_ctlcluster' : 'pg_ctl');
  if (service !== 'systemd') return { service };
  const unit = (input.serviceUnit ?? defaultServiceUnit(input.layout))
    .replaceAll('{{version}}', String(input.version))
    .replaceAll('{{cluster}}', input.cluster ?? 'main')
    .replaceAll('{{host}}', input.host);
  return { service, serviceUnit: unit };
}
