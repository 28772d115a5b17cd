/**
 * The shipped actions for the commands that read playbooks without running them (`pgplay docs`,
 * `pgplay schedule`). The composition root is the one place that imports the registry; those commands
 * get it from here, as the engine gets it through engine-deps.ts. getAction answers for the actions of the
 * playbooks loaded with this list (each imported when a playbook names it).
 */
export { shippedActions as actions, getAction } from '../actions/registry.js';
