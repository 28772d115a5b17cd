import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllActions } from '../actions/registry.js';
import { buildValidators } from '../schema/precompile.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { shippedTexts, writePrecompiled } from '../render/precompile-build.js';
import { PRECOMPILED_DIR } from '../render/precompiled.js';
import { writeParsedYaml } from '../load/yaml-cache-build.js';
import { PARSED_YAML_DIR } from '../load/yaml-cache.js';

/** `npm run build`, after tsc: the validators of the shipped actions' schemas, stamped with this build (dist/). */
const distDir = dirname(dirname(fileURLToPath(import.meta.url)));
process.stdout.write(buildValidators(distDir, await loadAllActions()));
process.stdout.write(`precompiled ${writePrecompiled(PRECOMPILED_DIR, shippedTexts(PACKAGE_ROOT))} templates and playbook strings to ${PRECOMPILED_DIR}\n`);
process.stdout.write(writeParsedYaml(PARSED_YAML_DIR, join(PACKAGE_ROOT, 'playbooks')));
