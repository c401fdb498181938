// Usage: node audit.mjs http://127.0.0.1:8080/graphql
// Prints every warning and failure, then the counts; exits 1 if any MUST audit fails.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
const count = { ok: 0, warn: 0, error: 0 };
for (const r of results) {
  count[r.status] += 1;
  if (r.status !== 'ok') console.log(`${r.status.toUpperCase()} ${r.name}: ${r.reason}`);
}
console.log(`graphql-http audit: ${count.ok} passed, ${count.warn} warnings, ${count.error} failed`);
process.exit(count.error > 0 ? 1 : 0);
