// Runs every audit of graphql-http's server audit suite (MUSTs and SHOULDs) against a GraphQL
// endpoint and exits non-zero unless all pass. Usage: node audit.mjs [url]
import { serverAudits } from 'graphql-http';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/graphql';
let failed = 0;
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  const mark = result.status === 'ok' ? 'ok   ' : result.status === 'warn' ? 'WARN ' : 'ERROR';
  if (result.status !== 'ok') failed += 1;
  console.log(`${mark} ${audit.id} ${audit.name}${result.status === 'ok' ? '' : `\n      ${result.reason}`}`);
}
console.log(failed === 0 ? 'all audits pass' : `${failed} audit(s) not ok`);
process.exit(failed === 0 ? 0 : 1);
