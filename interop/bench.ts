// What a native worker buys a knitting user: the same knitting host (Bun, one process worker)
// timed against knitting's own JS worker and against knit-knitting-worker. Calls are `add1`
// (a number in, a number out), so the figures are the round trip, not the task.
//
//   KNIT_KNITTING_DIR=<knitting checkout> bun interop/bench.ts --worker <knit-knitting-worker>
//       [--quick] [--out FILE]
// Table on stderr; with --out, one JSON document ("knit-interop-bench/1") in FILE.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";

const args = process.argv.slice(2);
const usage =
  "usage: KNIT_KNITTING_DIR=DIR bun interop/bench.ts --worker PATH [--quick] [--out FILE]";
if (args.includes("--help") || args.includes("-h")) {
  console.log(usage);
  process.exit(0);
}
const opt = (n: string) => (args.indexOf(n) >= 0 ? args[args.indexOf(n) + 1] : undefined);
const worker = opt("--worker"), out = opt("--out"), quick = args.includes("--quick");
const dir = process.env.KNIT_KNITTING_DIR;
if (!dir || !worker) {
  console.error(usage);
  process.exit(2);
}
const knitting = await import(`${dir}/knitting.ts`);
const tasks = await import("../tests/interop/tasks.ts");
const pkg = await import(`${dir}/package.json`);

const ns = () => Bun.nanoseconds();
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

type Case = Record<string, number | string>;
const cases: Case[] = [];

const measure = async (name: string, prefix?: string[]) => {
  const pool = knitting.createPool({
    threads: 1,
    worker: {
      runtime: "process",
      processRuntime: "bun",
      ...(prefix ? { processCommandPrefix: prefix } : {}),
    },
  })(tasks);
  try {
    const lat = quick ? 1000 : 10000;
    for (let i = 0; i < lat / 5; i++) await pool.call.add1(i); // warm-up
    const t: number[] = [];
    for (let i = 0; i < lat; i++) {
      const t0 = ns();
      await pool.call.add1(i);
      t.push(ns() - t0);
    }
    t.sort((a, b) => a - b);
    cases.push({ worker: name, case: "latency", calls: lat, p50_ns: pct(t, 50), p99_ns: pct(t, 99) });
    for (const burst of [1, 10, 100, 1000]) {
      const reps = Math.max(quick ? 10 : 30, Math.floor((quick ? 5000 : 40000) / burst));
      const per: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = ns();
        await Promise.all(Array.from({ length: burst }, (_, i) => pool.call.add1(i)));
        per.push(ns() - t0);
      }
      const m = median(per);
      cases.push({ worker: name, case: `burst/${burst}`, repetitions: reps, burst_median_ns: m,
        per_call_ns: Math.round(m / burst), calls_per_s: Math.round((burst * 1e9) / m) });
    }
  } finally {
    await pool.shutdown();
  }
};

// ABBA: each worker measured twice in fresh pools, interleaved, so a slow phase of the machine
// hits both; each figure below is the median over the rounds.
const rounds: Array<[string, string[] | undefined]> = [
  ["knitting-js", undefined], ["knit", [worker, "--"]], ["knit", [worker, "--"]], ["knitting-js", undefined],
];
for (const [name, prefix] of rounds) await measure(name, prefix);
const merged: Case[] = [];
for (const c of cases) {
  if (merged.some((m) => m.worker === c.worker && m.case === c.case)) continue;
  const same = cases.filter((x) => x.worker === c.worker && x.case === c.case);
  const m: Case = { ...c, rounds: same.length };
  for (const k of Object.keys(c)) {
    if (typeof c[k] === "number" && k.endsWith("_ns") || k === "calls_per_s") {
      m[k] = median(same.map((x) => x[k] as number));
    }
  }
  merged.push(m);
}
cases.splice(0, cases.length, ...merged);

const us = (x: number) => (x / 1000).toFixed(1).padStart(9);
console.error("worker        case         p50 us    p99 us  burst us  per-call us     calls/s");
for (const c of cases) {
  const lat = c.case === "latency";
  console.error(`${String(c.worker).padEnd(13)} ${String(c.case).padEnd(10)} ` +
    (lat ? `${us(c.p50_ns as number)} ${us(c.p99_ns as number)}` : " ".repeat(19)) +
    (lat ? "" : ` ${us(c.burst_median_ns as number)} ${us(c.per_call_ns as number).padStart(12)} ${String(c.calls_per_s).padStart(11)}`));
}
if (out) {
  writeFileSync(out, JSON.stringify({
    schema: "knit-interop-bench/1",
    context: {
      date: new Date().toISOString(), bun: Bun.version, knitting: pkg.default.version,
      cpus: cpus().length, cpu: cpus()[0]?.model, quick,
      task: "add1 (number -> number), 1 process worker, processRuntime bun",
    },
    cases,
  }, null, 2) + "\n");
  console.error(`interop bench: ${out}`);
}
