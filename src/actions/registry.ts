import assertAction from './assert.js';
import baseCopyAction from './base-copy.js';
import baseRestoreAction from './base-restore.js';
import barmanAction from './barman.js';
import basebackupAction from './basebackup.js';
import blockAction from './block.js';
import commandAction from './command.js';
import dataCheckAction from './data-check.js';
import drillSentinelAction from './drill-sentinel.js';
import debianClusterAction from './debian-cluster.js';
import dumpAction from './dump.js';
import fileAction from './file.js';
import pgbackrestAction from './pgbackrest.js';
import pitrTargetAction from './pitr-target.js';
import pendingRestartAction from './pending-restart.js';
import pgpassAction from './pgpass.js';
import preflightAction from './preflight.js';
import postgresAction from './postgres.js';
import recoveryAction from './recovery.js';
import restoreDumpAction from './restore-dump.js';
import roleAction from './role.js';
import sqlAction from './sql.js';
import templateAction from './template.js';
import { markShippedActions } from '../schema/documents.js';
import type { Action } from './types.js';
import waitAction from './wait.js';
import rewindAction from './rewind.js';
import walArchiveAction from './wal-archive.js';

/**
 * Every action pgplay knows. The playbook schema is built from this list, so an action's input schema
 * is published (schemas/playbook.schema.json) the moment it is listed here.
 */
export const actions: readonly Action<any>[] = [commandAction, templateAction, fileAction, sqlAction, waitAction, assertAction, postgresAction, basebackupAction, recoveryAction, pgpassAction, pgbackrestAction, pendingRestartAction, preflightAction, debianClusterAction, blockAction, roleAction, pitrTargetAction, rewindAction, dumpAction, restoreDumpAction, baseRestoreAction, walArchiveAction, baseCopyAction, dataCheckAction, drillSentinelAction, barmanAction];

const byName = new Map<string, Action<any>>(actions.map((a) => [a.name, a]));

export function getAction(name: string): Action<any> | undefined {
  return byName.get(name);
}

export function actionNames(): string[] {
  return actions.map((a) => a.name);
}

// The build generates the playbook validators from this very list: loaders given it use them.
markShippedActions(actions);
