// Drives the patched app's client code (the Effect service and runtime the pages use) against the
// real backend through the model of Grafana's plugin proxy, and prints what each call returned
// as one JSON document in OUT_FILE (stdout carries Effect's log lines): test_client_live.py judges it.
import { writeFileSync } from 'node:fs';
import { Effect } from 'effect';
// a namespace import, so that the snapshot's own client (without listViolations) still bundles
import * as app from 'betrace-app/services/BeTraceService';
import { runEffect } from 'betrace-app/services/runtime';

const grafana = process.env.GRAFANA_URL!; // the proxy model, where a browser would find Grafana
const backend = process.env.BACKEND_URL!; // only for posting spans, as an application does
const ruleName = process.env.RULE_NAME!;
const expression = process.env.RULE_EXPRESSION!;
const spanName = process.env.SPAN_NAME!;

// The page runs at Grafana's origin: relative URLs resolve against it, as in the browser.
(globalThis as any).location = new URL('/a/betrace-app', grafana);

const call = <A>(f: (s: any) => Effect.Effect<A, unknown>): Promise<A> =>
  runEffect(app.BeTraceService.pipe(Effect.flatMap(f)) as Effect.Effect<A, unknown, any>);

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
    return null;
  } catch (error: any) {
    return { tag: error?._tag, status: error?.status, message: String(error?.message) };
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const main = async () => {
  const out: Record<string, unknown> = {};
  out.health = await call((s) => s.health());
  out.listBefore = await call((s) => s.listRules());
  if (process.env.ROLE === 'Viewer') {
    // a Viewer reads; creating a rule is refused by Grafana (the route's reqRole)
    out.refused = await failure(
      call((s) => s.createRule({ name: ruleName, description: '', expression, enabled: false, severity: 'HIGH' }))
    );
    out.listAfter = await call((s) => s.listRules());
    writeFileSync(process.env.OUT_FILE!, JSON.stringify(out, null, 2) + '\n');
    return;
  }
  out.created = await call((s) =>
    s.createRule({ name: ruleName, description: 'written by the test', expression, enabled: false, severity: 'HIGH' })
  );
  out.duplicate = await failure(
    call((s) => s.createRule({ name: ruleName, description: '', expression, enabled: false, severity: 'HIGH' }))
  );
  // a rule the backend does not compile: the editor shows this message above its form
  out.uncompiled = await failure(
    call((s) => s.createRule({ name: `${ruleName}-uncompiled`, description: '',
      expression: 'when { fraud-check } never { skip }', enabled: false, severity: 'HIGH' }))
  );
  out.got = await call((s) => s.getRule(ruleName));
  out.updated = await call((s) =>
    s.updateRule(ruleName, { name: ruleName, description: 'edited', expression, enabled: false, severity: 'CRITICAL' })
  );
  out.enabled = await call((s) => s.enableRule(ruleName));
  out.listAfter = await call((s) => s.listRules());

  const now = BigInt(Date.now()) * 1000000n;
  const spans = [{ traceId: 'trace-from-the-test', spanId: 'span-1', name: spanName,
    startTime: String(now), endTime: String(now + 1000000n), attributes: { 'service.name': 'shop' } }];
  const posted = await fetch(`${backend}/v1/spans`, { method: 'POST', body: JSON.stringify({ spans }),
    headers: { 'Content-Type': 'application/json' } });
  out.spans = { status: posted.status, body: await posted.json() };

  // until the trace's own verdict ("matched trace"), 3 to 4 s after its last span; the
  // span-level one ("matched span") comes at once
  let violations: any = { violations: [] };
  const judged = () => violations.violations.some((v: any) => / matched trace /.test(v.message));
  for (let i = 0; i < 60 && !judged(); i++) {
    await sleep(250);
    violations = await call((s) => s.listViolations({ ruleId: ruleName }));
  }
  out.violations = violations;
  out.views = violations.violations.map((app as any).toViolationView);

  out.disabled = await call((s) => s.disableRule(ruleName));
  out.deleted = await call((s) => s.deleteRule(ruleName));
  out.missing = await failure(call((s) => s.getRule(ruleName)));
  out.listEnd = await call((s) => s.listRules());
  writeFileSync(process.env.OUT_FILE!, JSON.stringify(out, null, 2) + '\n');
};

main().catch((error) => {
  process.stderr.write(`driver failed: ${error?.stack ?? JSON.stringify(error)}\n`);
  process.exit(1);
});
