import type { JsonSchema } from './json-schema.js';
import { STEP_KEYS } from '../model/playbook.js';
import {
  DRAFT_07,
  DURATION,
  IDENTIFIER_EXPECTED,
  IDENTIFIER_PATTERN,
  NAME_EXPECTED,
  NAME_PATTERN,
  SCHEMA_BASE_URL,
} from './common.js';
import { allowTemplates } from './templated.js';

export interface ActionSchemaSource {
  name: string;
  summary: string;
  schema: JsonSchema;
}

const ref = (name: string) => ({ $ref: `#/definitions/${name}` });
const SCALAR = { type: ['string', 'number', 'boolean'] };

const PARAM_DEF: JsonSchema = {
  type: 'object',
  description: 'A typed input, set with -p name=value and validated before anything runs',
  properties: {
    type: { enum: ['string', 'integer', 'number', 'boolean'], description: 'How the -p value is read' },
    description: { type: 'string', description: 'Shown in help and errors' },
    enum: { type: 'array', items: SCALAR, minItems: 1, description: 'The only values allowed' },
    default: { ...SCALAR, description: 'Value used when -p does not set it' },
    required: { type: 'boolean', default: false, description: 'The run refuses to start without it' },
    pattern: { type: 'string', format: 'regex', description: 'Regular expression a string value must match' },
    minimum: { type: 'number', description: 'Smallest allowed number' },
    maximum: { type: 'number', description: 'Largest allowed number' },
    secret: { type: 'boolean', default: false, description: 'Redact the value everywhere it could be shown' },
    recovery_target_of: {
      type: 'string',
      pattern: IDENTIFIER_PATTERN,
      description:
        'The value is the value of a recovery target whose type (latest, time, name, xid, lsn, immediate) the named param holds: ' +
        'checked for that type before anything runs (a time needs its zone offset, an xid is a number, an LSN is X/Y)',
    },
  },
  required: ['type'],
  additionalProperties: false,
};

// ---- The top-level `report:` key (model/report.ts) ---------------------------------------------------
const registered = (description: string): JsonSchema => ({
  type: 'string',
  pattern: IDENTIFIER_PATTERN,
  errorMessage: `a registered name: ${IDENTIFIER_EXPECTED}`,
  description,
});

/** A step as reported inside includes: include-step/step (or include-step/include-step/step). */
function stepPath(): JsonSchema {
  return {
    type: 'string',
    pattern: `${NAME_PATTERN.slice(0, -1)}(/${NAME_PATTERN.slice(1, -1)})+$`,
    errorMessage: `an include step id and the step ids within it, as include-step/step, each ${NAME_EXPECTED}`,
  };
}
const STEP_PATH = stepPath();

/** The drill's and restore.yml's restore steps: one per kind of target, the first that ran is the restore. */
const RESTORE_STEPS: JsonSchema = {
  type: 'array',
  minItems: 1,
  items: registered('A restore step\'s registered value'),
  description: 'The restore steps (one per kind of target); the first that ran is the restore, and its start begins the RTO',
};

const DRILL_OUTPUTS: JsonSchema = {
  type: 'object',
  description: 'Which registered values feed the drill report',
  additionalProperties: false,
  required: ['restore', 'started', 'ready', 'proof', 'recovery_point', 'checks', 'teardown', 'copy', 'wal_at_start', 'archive_check', 'archiver', 'repository'],
  properties: {
    restore: RESTORE_STEPS,
    started: registered('Starting the restored copy'),
    ready: registered('Waiting until the copy is promoted and answers; its ok result ends the RTO'),
    proof: registered('A command whose stdout holds the server log lines about recovery'),
    recovery_point: registered('A query returning last_transaction and timeline of the copy'),
    checks: registered('A command whose stderr holds the pgplay-check lines of the user\'s checks'),
    teardown: registered('Removing the copy'),
    copy: registered('Making the scratch PGDATA (registered only once the drill made a copy)'),
    wal_at_start: registered("The primary's WAL segment and LSN at the drill's start (rows[0].wal, rows[0].lsn)"),
    archive_check: registered("pgbackrest check on the primary (archives its current WAL)"),
    archiver: registered("The primary's pg_stat_archiver (rows[0].failing, last_archived_wal, last_failed_wal)"),
    repository: registered("The repository's newest WAL segment after the check (archive_max)"),
    target_check: registered('The pitr_target check: the backup set chosen for the target, why, and the WAL range checked'),
    data_checks: { type: 'array', items: registered('A data_check step\'s registered value (its checks: passed, failed or could not run)'), description: 'The data checks of the copy (data_check steps)' },
    prepare: registered("The user's command that prepared the copy before the checks"),
  },
};

const REJOIN_OUTPUTS: JsonSchema = {
  type: 'object',
  description: 'Which steps (include-step/step) feed the rejoin report: the path taken and how long each took',
  additionalProperties: false,
  required: ['rewind', 'restore', 'streaming'],
  properties: {
    rewind: { ...STEP_PATH, description: 'The rewind step (its registered value: possible, reasons, rewound)' },
    restore: { ...STEP_PATH, description: 'The fallback delta restore step' },
    streaming: { ...STEP_PATH, description: 'The wait until the new primary sees the host streaming' },
  },
};

const PROMOTION_OUTPUTS: JsonSchema = {
  type: 'object',
  description: 'Which registered values feed the promotion report (the topology change)',
  additionalProperties: false,
  required: ['promoted'],
  properties: {
    promoted: registered('The promotion, registered on the new primary (changed, timeline, previous_timeline)'),
    fenced: registered('The fencing of the old primary, registered on it (unreachable: true when its host could not be reached)'),
    fence_confirmed: registered('The operator\'s confirmation that an old primary that could not be fenced cannot come back, registered on the new primary'),
    // include-step/step, or deeper when the included playbook includes another (rebuild-old-primary/build/streaming).
    rebuilt: { ...stepPath(), description: 'A step (include-step/step) whose ok result on the old primary means it streams from the new primary' },
    rejoin: { ...REJOIN_OUTPUTS, description: "The old primary's rejoin (rebuild_old_primary): the steps that say which path it took and how long it took" },
  },
};

const RESTORE_OUTPUTS: JsonSchema = {
  type: 'object',
  description: 'Which registered values feed the restore report (RTO, recovery point, evidence lines) and the topology change',
  additionalProperties: false,
  required: ['restore', 'ready', 'proof', 'recovery_point', 'primary'],
  properties: {
    restore: RESTORE_STEPS,
    ready: registered('Waiting until the restored server is promoted and answers; its ok result ends the RTO'),
    proof: registered('A command whose stdout holds the server log lines about recovery'),
    recovery_point: registered('A query returning last_transaction and timeline of the restored server'),
    target_check: registered('The pitr_target check: the backup set chosen for the target, why, and the WAL range checked'),
    kept: registered('Keeping the previous PGDATA aside: a command whose stdout is the path it was renamed to'),
    backup: {
      oneOf: [registered('The new full backup on the new timeline'), { type: 'array', minItems: 1, items: registered("A backup step's registered value") }],
      description: 'The new full backup on the new timeline: one registered value, or one per backup engine (the first that ran)',
    },
    primary: registered('A query on the new primary: rows[0].read_write, timeline, previous_primary, standbys'),
  },
};

const kindIs = (kind: string): JsonSchema => ({ properties: { kind: { const: kind } }, required: ['kind'] });

/** The top-level `report:` key: the report the playbook produces after a real run, and what feeds it. */
const REPORT_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'The report this playbook produces after a real run (not under plan), and which registered values feed it',
  additionalProperties: false,
  required: ['kind', 'outputs'],
  properties: {
    kind: {
      enum: ['drill', 'promotion', 'rejoin', 'restore'],
      description:
        'drill: the point-in-time-recovery drill report (JSON and text); promotion: the topology change (a notice, and the lab\'s inventory follows); ' +
        'rejoin: which path (pg_rewind or delta restore) an old primary took back and how long each took; restore: the restore report (JSON and text) and the topology change',
    },
    outputs: { type: 'object', description: 'Report field: registered name' },
  },
  allOf: [
    { if: kindIs('drill'), then: { properties: { outputs: DRILL_OUTPUTS } } },
    { if: kindIs('promotion'), then: { properties: { outputs: PROMOTION_OUTPUTS } } },
    { if: kindIs('rejoin'), then: { properties: { outputs: REJOIN_OUTPUTS } } },
    { if: kindIs('restore'), then: { properties: { outputs: RESTORE_OUTPUTS } } },
  ],
};

const HOSTS: JsonSchema = {
  description: 'A host name, a role (primary, standby, repository, drill), all, or a list of them',
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
  ],
  errorMessage: 'a host name, a role or all, or a list of them',
};

/** The common step keys, in STEP_KEYS order. Values that are not free strings accept templates. */
function commonStepProperties(): Record<string, JsonSchema> {
  const props: Record<(typeof STEP_KEYS)[number], JsonSchema> = {
    id: {
      type: 'string',
      pattern: NAME_PATTERN,
      errorMessage: `a step id ${NAME_EXPECTED}`,
      description: 'Stable id, unique in the playbook; used by --from, --resume and reports',
    },
    name: { type: 'string', description: 'What the step achieves, shown in output' },
    hosts: ref('hosts'),
    when: {
      type: ['string', 'boolean'],
      description: 'Expression; the step is skipped on a host where it is false',
    },
    register: {
      type: 'string',
      pattern: IDENTIFIER_PATTERN,
      errorMessage: IDENTIFIER_EXPECTED,
      description: 'Name under which the result is available to later steps',
    },
    timeout: { ...ref('duration'), description: 'Time allowed for the step on one host' },
    retries: allowTemplates({ type: 'integer', minimum: 0, description: 'Extra attempts after a failure (or until `until` holds)' }),
    delay: { ...ref('duration'), description: 'Pause between attempts' },
    until: { type: 'string', description: 'Expression evaluated after each attempt; retried until true' },
    ignore_errors: allowTemplates({ type: 'boolean', description: 'A failure does not stop the run' }),
    tags: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Select steps with --tags' },
    notify: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Handlers to run once at the end when this step changed something',
    },
    become: { type: 'string', minLength: 1, description: 'OS user to run this step as' },
    check_mode: allowTemplates({
      type: 'boolean',
      description:
        'true: never change (even in run); false: run for real even under plan/--check, allowed only on read-only steps (queries, pgbackrest info, assert, wait, readers such as date)',
    }),
    confirm: {
      type: ['string', 'boolean'],
      description: 'Human gate shown before a destructive step; --yes answers it',
    },
    confirm_key: {
      type: 'string',
      pattern: '^[a-z][a-z0-9_]*$',
      errorMessage: 'a lower-case name: letters, digits and _',
      description:
        "Shares the step's confirmation on its host under this name (it replaces the action's own, e.g. restart): a yes to an earlier step with the same key on the same host answers it, and a yes here answers later ones. A gate (an assert's confirm) before a sequence then asks once, before the sequence changes anything; without a terminal and without --yes the run is refused there.",
    },
    guard: {
      type: 'boolean',
      description:
        'A pre-check or fence: always runs, under --from, --tags, --limit and --resume (never skipped as done), on all its hosts',
    },
    loop: {
      anyOf: [{ type: 'array' }, { type: 'string', minLength: 1 }],
      errorMessage: 'a list of items or a template that renders to one',
      description: 'Run the step once per item on each host; the item is {{item}}, its 0-based index {{item_index}}',
    },
    cleanup: {
      type: 'boolean',
      description: 'Teardown: the step still runs after an earlier step failed or the run was interrupted (Ctrl-C); its when still decides',
    },
    rescue: {
      ...INCLUDE_STEP,
      description:
        'On an include step: the playbook (path relative to this one, with params) run when a step of the included section fails, is refused or interrupted, to put back what it changed; the run still fails. Its steps always run (as guards) and are reported as <id>/rescue/<step>',
    },
    unreachable: {
      enum: ['fail', 'tolerate'],
      default: 'fail',
      description:
        'tolerate: a host that cannot be connected to (refused, timed out, no route; not an authentication or host-key failure) ' +
        'does not fail the step: it is skipped there and registers unreachable: true and unreachable_reason; fail (default): the step fails',
    },
  };
  return props;
}

/** `include:` on a step (never on a handler): the engine runs the other playbook's steps in its place. */
const INCLUDE_STEP: JsonSchema = {
  ...allowTemplates({
    type: 'object',
    additionalProperties: false,
    required: ['playbook'],
    properties: {
      playbook: { type: 'string', minLength: 1, description: 'Path of the playbook to include, relative to this playbook.' },
      params: { type: 'object', description: 'Params for the included playbook.' },
    },
  }),
  description: 'Runs the steps of another playbook (path relative to this one) with the given params, instead of an action.',
};

/**
 * JSON Schema of a playbook for the given actions. Whether a step has exactly one action is checked
 * in code (checkActionKeys): as a oneOf it would drown the user in one error per action.
 * `hostsOptional` is for included playbooks, whose steps may inherit the include step's hosts.
 */
export function buildPlaybookSchema(
  actions: ReadonlyArray<ActionSchemaSource>,
  options: { hostsOptional?: boolean } = {},
): JsonSchema {
  const actionProperties: Record<string, JsonSchema> = {};
  for (const a of [...actions].sort((x, y) => x.name.localeCompare(y.name))) {
    actionProperties[a.name] = { ...allowTemplates(a.schema), description: a.summary };
  }
  const { id: _id, ...handlerProperties } = { ...commonStepProperties(), ...actionProperties };
  const stepProperties = { ...commonStepProperties(), include: INCLUDE_STEP, ...actionProperties };

  return {
    $schema: DRAFT_07,
    $id: `${SCHEMA_BASE_URL}playbook.schema.json`,
    title: 'pgplay playbook',
    description: 'A procedure: typed params, and steps that each run one action on some hosts',
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, description: 'Name of the procedure' },
      description: { type: 'string', description: 'What it does, shown in help' },
      inventory: { type: 'string', minLength: 1, description: 'Inventory file, relative to the playbook (when -i is not given)' },
      params: {
        type: 'object',
        description: 'Typed inputs, set with -p name=value',
        propertyNames: { pattern: IDENTIFIER_PATTERN, errorMessage: `a param name: ${IDENTIFIER_EXPECTED}` },
        additionalProperties: ref('paramDef'),
      },
      vars: { type: 'object', description: 'Free variables for templates' },
      report: REPORT_SCHEMA,
      steps: { type: 'array', items: ref('step'), description: 'Run in order' },
      handlers: {
        type: 'object',
        description: 'Steps run once at the end, when a step that notifies them changed something',
        propertyNames: { pattern: NAME_PATTERN, errorMessage: `a handler name ${NAME_EXPECTED}` },
        additionalProperties: ref('handler'),
      },
    },
    required: ['name', 'steps'],
    additionalProperties: false,
    definitions: {
      duration: allowTemplates(DURATION),
      hosts: HOSTS,
      paramDef: PARAM_DEF,
      step: {
        type: 'object',
        description: 'Common keys plus exactly one action key',
        properties: stepProperties,
        ...stepRequirements(options.hostsOptional ?? false),
        additionalProperties: false,
      },
      handler: {
        type: 'object',
        // Without hosts, a handler runs on the hosts whose steps notified it.
        description: 'Common keys (no id) plus exactly one action key; hosts default to the notifying hosts',
        properties: handlerProperties,
        additionalProperties: false,
      },
    },
  };
}

function stepRequirements(hostsOptional: boolean): JsonSchema {
  if (hostsOptional) return { required: ['id'] };
  // An include step may leave hosts to the included playbook, whose steps name their own.
  return {
    required: ['id'],
    if: { properties: { include: true }, required: ['include'] },
    else: { properties: { hosts: true }, required: ['hosts'] },
  };
}

/** The step keys that are actions, i.e. everything a step may carry beyond the common keys. */
export function actionKeysOf(step: Record<string, unknown>, actionNames: ReadonlyArray<string>): string[] {
  return Object.keys(step).filter((k) => actionNames.includes(k));
}
