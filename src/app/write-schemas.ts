import { loadAllActions } from '../actions/registry.js';
import { SCHEMAS_DIR } from '../core/paths.js';
import { writePublishedSchemas } from '../schema/write-schemas.js';

/** `npm run schemas`: schemas/*.schema.json from the code, with the shipped actions' inputs. */
for (const file of writePublishedSchemas(SCHEMAS_DIR, await loadAllActions())) process.stdout.write(`wrote ${file}\n`);
