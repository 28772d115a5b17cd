/**
 * The published schema of the run report: what `pgplay run ... --report FILE` writes for a playbook
 * that declares no report of its own (a drill, a restore and a rejoin write theirs): every event of the
 * run as `--output json` prints it, and after a promotion the topology change. Published as
 * schemas/report.schema.json (drift-tested like the others), so that a tool reading run reports can
 * validate them.
 */
import type { ErrorCode } from '../core/errors.js';
import type { JsonSchema } from './json-schema.js';

const ERROR_CODES = ['USAGE', 'YAML', 'SCHEMA', 'SEMANTIC', 'RENDER', 'STEP_FAILED', 'TRANSPORT', 'TIMEOUT', 'GUARD', 'LOCK', 'INTERRUPTED', 'INTERNAL'] as const;
// Every error code pgplay has is listed (a new one fails the type check here, not a reader's validation).
type Unlisted = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const everyCodeListed: Unlisted extends never ? true : never = true;
void everyCodeListed;

const TIME: JsonSchema = { type: 'string', format: 'date-time', description: 'When, as an ISO 8601 UTC time' };
const STEP_STATUS: JsonSchema = { type: 'string', enum: ['ok', 'changed', 'skipped', 'failed'] };

const ERROR: JsonSchema = {
  type: 'object',
  description: 'An error as pgplay reports it everywhere (redacted)',
  required: ['code', 'message', 'exitCode'],
  additionalProperties: false,
  properties: {
    code: { type: 'string', enum: [...ERROR_CODES] },
    message: { type: 'string' },
    exitCode: { type: 'integer', enum: [0, 1, 2, 3, 130] },
    expected: { type: 'string' },
    hint: { type: 'string' },
    step: { type: 'string' },
    host: { type: 'string' },
    position: {
      type: 'object',
      required: ['file', 'line', 'col'],
      additionalProperties: false,
      properties: { file: { type: 'string' }, line: { type: 'integer', minimum: 1 }, col: { type: 'integer', minimum: 1 } },
    },
    command: {
      type: 'object',
      required: ['argv'],
      additionalProperties: false,
      properties: { argv: { type: 'array', items: { type: 'string' } }, rc: { type: 'integer' }, stderrTail: { type: 'array', items: { type: 'string' } } },
    },
    unreachable: { const: true },
  },
};

const RECAP: JsonSchema = {
  type: 'object',
  description: 'Per host: how many steps ended in each state',
  additionalProperties: {
    type: 'object',
    required: ['ok', 'changed', 'skipped', 'failed', 'unreachable'],
    additionalProperties: false,
    properties: Object.fromEntries(['ok', 'changed', 'skipped', 'failed', 'unreachable'].map((k) => [k, { type: 'integer', minimum: 0 }])),
  },
};

const event = (type: string, description: string, required: string[], properties: Record<string, JsonSchema>): JsonSchema => ({
  type: 'object',
  description,
  required: ['type', ...required, 'time'],
  additionalProperties: false,
  properties: { type: { const: type }, ...properties, time: TIME },
});

const EVENTS: JsonSchema[] = [
  event('run-start', 'The run began', ['runId', 'playbook', 'inventory', 'check', 'hosts', 'steps'], {
    runId: { type: 'string' },
    playbook: { type: 'string' },
    inventory: { type: 'string' },
    check: { type: 'boolean', description: 'plan / --check: nothing was changed' },
    shipped: { type: 'boolean', description: 'The playbook is one pgplay ships, found by name' },
    hosts: { type: 'array', items: { type: 'string' } },
    steps: { type: 'array', items: { type: 'string' } },
  }),
  event('step-start', 'A step began on its hosts', ['step', 'name', 'hosts', 'handler'], {
    step: { type: 'string' },
    name: { type: 'string' },
    hosts: { type: 'array', items: { type: 'string' } },
    handler: { type: 'boolean' },
  }),
  event('step-result', 'A step ended on one host (or one item of a loop)', ['step', 'name', 'host', 'status', 'handler', 'attempts', 'durationMs'], {
    step: { type: 'string' },
    name: { type: 'string' },
    host: { type: 'string' },
    status: STEP_STATUS,
    handler: { type: 'boolean' },
    msg: { type: 'string' },
    diff: { type: 'string' },
    attempts: { type: 'integer', minimum: 0 },
    durationMs: { type: 'number', minimum: 0 },
    ignored: { type: 'boolean', description: 'Failed, and the step said ignore_errors' },
    item: { description: 'The loop item' },
    index: { type: 'integer', minimum: 0 },
    items: { type: 'integer', minimum: 0 },
    error: ERROR,
  }),
  event('log', 'A progress line of a step on a host', ['step', 'host', 'line'], { step: { type: 'string' }, host: { type: 'string' }, line: { type: 'string' } }),
  event('run-end', 'The run ended', ['runId', 'status', 'exitCode', 'recap', 'durationMs'], {
    runId: { type: 'string' },
    status: { type: 'string', enum: ['ok', 'failed', 'refused', 'interrupted', 'invalid'] },
    exitCode: { type: 'integer', enum: [0, 1, 2, 3, 130] },
    recap: RECAP,
    durationMs: { type: 'number', minimum: 0 },
    error: ERROR,
    interruptedBy: { type: 'string', description: 'Status interrupted: what interrupted the run (terminated by SIGTERM, hung up (SIGHUP), ...)' },
  }),
];

const TOPOLOGY: JsonSchema = {
  type: 'object',
  description: 'After a promotion: which server is the primary now, and how the old one was fenced',
  required: ['type', 'runId', 'inventory', 'primary', 'previousPrimaryStreams'],
  additionalProperties: false,
  properties: {
    type: { const: 'topology-changed' },
    runId: { type: 'string' },
    inventory: { type: 'string' },
    primary: { type: 'string' },
    previousPrimary: { type: 'string' },
    timeline: { type: 'integer' },
    previousTimeline: { type: 'integer' },
    previousPrimaryStreams: { type: 'boolean' },
    fencing: {
      oneOf: [
        { type: 'object', required: ['state'], additionalProperties: false, properties: { state: { const: 'fenced' } } },
        {
          type: 'object',
          required: ['state', 'reason', 'confirmedByOperator'],
          additionalProperties: false,
          properties: { state: { const: 'impossible' }, reason: { type: 'string' }, confirmedByOperator: { type: 'boolean' } },
        },
      ],
    },
  },
};

export function buildReportSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://pgplay.dev/schemas/report.schema.json',
    title: 'pgplay report',
    description: 'The run report (pgplay run ... --report FILE): every event of the run, in order, and after a promotion the topology change',
    type: 'object',
    required: ['events'],
    additionalProperties: false,
    properties: {
      events: {
        type: 'array',
        description: 'The run events as --output json prints them: run-start first, run-end last',
        items: { oneOf: EVENTS },
      },
      topology: TOPOLOGY,
    },
  };
}

/** The text of schemas/report.schema.json. */
export function publishedReportSchema(): string {
  return `${JSON.stringify(buildReportSchema(), null, 2)}\n`;
}

export const REPORT_SCHEMA_FILE = 'report.schema.json';
