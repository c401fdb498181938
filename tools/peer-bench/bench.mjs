// graphile-worker's side of the peer benchmark (issue #8): schedule N delayed jobs, then run
// them with a worker and report jobs/s from the moment they fall due to the last one done.
// Usage: node bench.mjs postgres://… [N] [concurrency] [plain|batched]
// batched: the local queue (500 jobs fetched at a time) and batched completion
// (completeJobBatchDelay 0), the settings graphile-worker's users run for throughput.
import pg from "pg";
import { run, makeWorkerUtils, Logger } from "graphile-worker";

// Quiet: a log line per job would be measured too.
const logger = new Logger(() => () => {});

const [connectionString, n = "100000", concurrency = "10", mode = "plain"] = process.argv.slice(2);
if (!["plain", "batched"].includes(mode)) throw new Error(`mode ${mode}: plain or batched`);
const N = Number(n);
const utils = await makeWorkerUtils({ connectionString, logger });
await utils.migrate();
await utils.release();

const client = new pg.Client({ connectionString });
await client.connect();
await client.query("DELETE FROM graphile_worker._private_jobs");
// Delayed jobs: all due a little after scheduling ends, as the timers are on pledgeflow's side.
const scheduled = Date.now();
const BATCH = 5000;
const dueAt = new Date(Date.now() + 60_000);
for (let done = 0; done < N; done += BATCH) {
  const count = Math.min(BATCH, N - done);
  await client.query(
    `SELECT count(*) FROM graphile_worker.add_jobs(
       (SELECT array_agg(ROW('noop', json_build_object('i', i), NULL, $1::timestamptz, 1, NULL, 0, NULL)::graphile_worker.job_spec)
        FROM generate_series($2::int, $3::int) i))`,
    [dueAt, done, done + count - 1],
  );
}
const scheduling = (Date.now() - scheduled) / 1000;
// Make them due now rather than wait out the delay.
await client.query("UPDATE graphile_worker._private_jobs SET run_at = now()");
const start = Date.now();
let completed = 0;
let finish;
const allDone = new Promise((resolve) => (finish = resolve));
const runner = await run({
  connectionString,
  concurrency: Number(concurrency),
  noHandleSignals: true,
  pollInterval: 1000,
  ...(mode === "batched" ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
  taskList: {
    noop: async () => {
      completed += 1;
      if (completed === N) finish();
    },
  },
  logger,
});
await allDone;
const seconds = (Date.now() - start) / 1000;
await runner.stop();
const left = (await client.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")).rows[0].n;
await client.end();
console.log(JSON.stringify({ peer: "graphile-worker 0.18.0", mode, jobs: N, concurrency: Number(concurrency), scheduling_seconds: scheduling, seconds, jobs_per_second: N / seconds, left }));
