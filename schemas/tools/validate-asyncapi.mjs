// Validates schemas/asyncapi.json with the AsyncAPI initiative's own parser (not ours): `make asyncapi-check`.
// Prints every diagnostic and exits 1 on any error.
import { Parser } from '@asyncapi/parser';
import fs from 'fs';

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(fs.readFileSync(path, 'utf8'));
const names = ['error', 'warning', 'information', 'hint'];
for (const d of diagnostics) console.log(`${names[d.severity]} ${d.code}: ${d.message} at ${d.path.join('/')}`);
const errors = diagnostics.filter((d) => d.severity === 0).length;
const channels = document ? document.channels().length : 0;
console.log(`${path}: ${errors} errors, ${diagnostics.length - errors} other diagnostics, ${channels} channels`);
process.exit(errors || !document ? 1 : 0);
