// Golden vectors: knitting's own payload encoder writes a fixed list of values into its slot
// format; the bytes become tests/interop/vectors/knitting.vec, which knit's codec (knitting
// mode) must decode to the right value and re-encode to the same bytes.
//
//   KNIT_KNITTING_DIR=<knitting checkout> bun tests/interop/gen_vectors.ts \
//       --commit <knitting commit> [--out tests/interop/vectors/knitting.vec]
//
// Each value is encoded alone into a fresh codec (fresh arena, slot 0), so a dynamic payload
// always lands at region start 0 with region index 0. The case names are the contract with
// tests/interop/test_vectors.c, which builds the expected knit value for each name.
import { writeFileSync } from "node:fs";
import { Buffer as NodeBuffer } from "node:buffer";

const usage = `usage: KNIT_KNITTING_DIR=<knitting checkout> bun gen_vectors.ts --commit SHA [--out FILE]
Writes knitting's encoding of every value kind (tests/interop/vectors/README.md).`;
const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(usage);
  process.exit(0);
}
const opt = (name: string, dflt?: string) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const dir = process.env.KNIT_KNITTING_DIR;
const commit = opt("--commit");
const out = opt("--out", "tests/interop/vectors/knitting.vec")!;
if (!dir || !commit) {
  console.error(usage);
  process.exit(2);
}

const codec = await import(`${dir}/src/memory/payloadCodec.ts`);
const lock = await import(`${dir}/src/memory/lock.ts`);
const { Envelope } = await import(`${dir}/src/common/envelope.ts`);
const { NumericArray } = await import(`${dir}/src/connections/numeric-array.ts`);
const conn = await import(`${dir}/src/connections/index.ts`);
const pkg = await import(`${dir}/package.json`);
const unsafe = await import(`${dir}/unsafe.ts`);

// A fixed stack, so no path of the generating machine ends up in a fixture.
const err = (e: Error, stack?: string) => {
  if (stack === undefined) delete (e as { stack?: string }).stack;
  else e.stack = stack;
  if (typeof e.stack === "string" && stack === undefined) {
    Object.defineProperty(e, "stack", { value: undefined, configurable: true });
  }
  return e;
};
const bytes = (n: number, mul = 7) => {
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = (i * mul + 3) & 0xff;
  return u;
};
const ab = (n: number) => bytes(n).buffer;
const big = (magBytes: number) => (1n << BigInt(8 * magBytes)) - 1n; // all-0xFF magnitude
// JSON text of exactly n bytes: {"k":"xxx..."}
const jsonOfBytes = (n: number) => ({ k: "x".repeat(n - 8) });
const psbMapping = (name?: string) => {
  const sab = new SharedArrayBuffer(4096);
  const m: Record<string, unknown> = {
    runtime: "bun", fd: 7, size: 4096, byteLength: 4096, buffer: sab,
    kind: "shared-array-buffer", sab, baseAddressMod64: 0,
  };
  if (name) m.name = name;
  return m;
};
class Ext {
  constructor(private meta: unknown) {}
  [Symbol.for("knitting.payloadCodec")] = "knit.test.codec";
  toMetadata() { return this.meta; }
}

const cases: Array<[string, unknown]> = [
  ["undefined", undefined],
  ["null", null],
  ["true", true],
  ["false", false],
  ["f64_zero", 0],
  ["f64_negzero", -0],
  ["f64_int", 123],
  ["f64_frac", 1.5],
  ["f64_min_subnormal", 5e-324],
  ["f64_max", Number.MAX_VALUE],
  ["f64_neg_big", -1e308],
  ["f64_inf", Infinity],
  ["f64_neginf", -Infinity],
  ["f64_nan", NaN],
  ["bigint_zero", 0n],
  ["bigint_minus_one", -1n],
  ["bigint_int64_max", (1n << 63n) - 1n],
  ["bigint_int64_min", -(1n << 63n)],
  ["bigint_2p63", 1n << 63n],
  ["bigint_neg_2p63_minus_1", -(1n << 63n) - 1n],
  ["bigint_2p64_minus_1", (1n << 64n) - 1n],
  ["bigint_2p70", 1n << 70n],
  ["bigint_static_max", big(511)],
  ["bigint_dynamic_min", big(512)],
  ["bigint_neg_dynamic", -big(600)],
  ["date_epoch", new Date(0)],
  ["date_ms", new Date(1700000000123)],
  ["date_negative", new Date(-86400000)],
  ["date_invalid", new Date(NaN)],
  ["string_empty", ""],
  ["string_a", "a"],
  ["string_unicode", "h\u00e9llo \u20ac \u{1F600} \u0416"],
  ["string_ascii_512", "s".repeat(512)],
  ["string_ascii_513", "s".repeat(513)],
  ["string_2byte_256", "\u00e9".repeat(256)],
  ["string_2byte_257", "\u00e9".repeat(257)],
  ["string_3byte_170", "\u20ac".repeat(170)],
  ["string_3byte_171", "\u20ac".repeat(171)],
  ["string_4byte_128", "\u{1F600}".repeat(128)],
  ["string_4byte_129", "\u{1F600}".repeat(129)],
  ["string_nul", "a\u0000b"],
  ["string_64k", "q".repeat(65536)],
  ["json_empty_object", {}],
  ["json_empty_array", []],
  ["json_nested", { a: 1, b: "x", c: [1, 2, { d: null }], e: true, f: -0.5, g: "\u00e9\"\\" }],
  ["json_array", [1, "two", null, false, [3]]],
  ["json_512", jsonOfBytes(512)],
  ["json_513", jsonOfBytes(513)],
  ["json_drops_undefined", { a: 1, u: undefined, d: new Date(0) }],
  ["bytes_empty", new Uint8Array(0)],
  ["bytes_3", new Uint8Array([1, 2, 3])],
  ["bytes_512", bytes(512)],
  ["bytes_513", bytes(513)],
  ["bytes_4096", bytes(4096)],
  ["i32_small", new Int32Array([1, -2, 2147483647, -2147483648])],
  ["i32_128", new Int32Array(bytes(512).buffer)],
  ["i32_129", new Int32Array(bytes(516).buffer)],
  ["f64a_small", new Float64Array([1.5, -0, Infinity, NaN])],
  ["f64a_64", new Float64Array(64).map((_, i) => i / 3)],
  ["f64a_65", new Float64Array(65).map((_, i) => i / 3)],
  ["i64a_small", new BigInt64Array([1n, -1n, -(1n << 63n)])],
  ["i64a_65", new BigInt64Array(65).map((_, i) => BigInt(i) - 30n)],
  ["u64a_small", new BigUint64Array([1n, (1n << 64n) - 1n])],
  ["u64a_65", new BigUint64Array(65).map((_, i) => BigInt(i) << 40n)],
  ["dataview_small", new DataView(ab(10))],
  ["dataview_513", new DataView(ab(513))],
  ["arraybuffer_empty", new ArrayBuffer(0)],
  ["arraybuffer_small", ab(5)],
  ["arraybuffer_512", ab(512)],
  ["arraybuffer_513", ab(513)],
  ["nodebuffer_small", NodeBuffer.from([9, 8, 7])],
  ["nodebuffer_700", NodeBuffer.from(bytes(700))],
  ["error_plain", err(new Error("boom"))],
  ["error_type_cause_object", err(new TypeError("bad 3", { cause: { code: 7 } }), "TypeError: bad 3\n    at fixture (vectors:1:1)")],
  ["error_cause_string", err(new Error("outer", { cause: "why" }))],
  ["error_cause_number", err(new RangeError("r", { cause: 42 }))],
  ["error_cause_bigint", err(new Error("b", { cause: 12345678901234567890n }))],
  ["error_cause_error", err(new Error("top", { cause: err(new SyntaxError("inner")) }))],
  ["error_cause_null", err(new Error("n", { cause: null }))],
  ["error_custom_name", (() => { const e = err(new Error("m")); e.name = "KnitError"; return e; })()],
  ["error_unicode", err(new Error("\u00e9 \u{1F600} \"q\"\n"))],
  ["symbol_small", Symbol.for("knit.sym")],
  ["symbol_170", Symbol.for("y".repeat(170))],
  ["symbol_171", Symbol.for("y".repeat(171))],
  ["numeric_array_small", NumericArray.from([1, 2.5, -3])],
  ["numeric_array_65", NumericArray.from({ length: 65 }, (_: unknown, i: number) => i * 0.25)],
  ["envelope_json_static", new Envelope({ kind: "frame", n: 2 }, ab(16))],
  ["envelope_json_empty_body", new Envelope({ a: 1 }, new ArrayBuffer(0))],
  ["envelope_json_dynamic", new Envelope({ h: "z".repeat(600) }, ab(40))],
  ["envelope_string_static", new Envelope("plain header", ab(8))],
  ["envelope_string_dynamic", new Envelope("w".repeat(513), ab(3))],
  ["psb_fd", conn.ProcessSharedBuffer.fromMapping(psbMapping()).subbuffer(64, 16)],
  ["psb_named", conn.ProcessSharedBuffer.fromMapping(psbMapping("kpw_test_0001")).subbuffer(32, 32)],
  ["envelope_psb_json_static", new Envelope({ a: 1 }, conn.ProcessSharedBuffer.fromMapping(psbMapping()).subbuffer(0, 8))],
  ["envelope_psb_json_dynamic", new Envelope({ h: "v".repeat(520) }, conn.ProcessSharedBuffer.fromMapping(psbMapping()).subbuffer(8, 8))],
  ["envelope_psb_string_static", new Envelope("hdr", conn.ProcessSharedBuffer.fromMapping(psbMapping()).subbuffer(16, 8))],
  ["envelope_psb_string_dynamic", new Envelope("u".repeat(530), conn.ProcessSharedBuffer.fromMapping(psbMapping()).subbuffer(24, 8))],
  ["sab_pointer", new SharedArrayBuffer(8)],
  ["buffer_reference", new unsafe.BufferReference(new Uint8Array(8))],
  ["external_static", new Ext({ id: 5, tags: ["a"] })],
  ["external_dynamic", new Ext({ blob: "e".repeat(600) })],
];

const STATIC = new Set([15, 16, 18, 27, 29, 31, 32, 33, 34, 35, 37, 39, 45, 54]);
const WORDS = new Set([46, 47, 48]);
const ENV_STATIC_HEADER = new Set([40, 42, 49, 51]);
const ENV_DYNAMIC_HEADER = new Set([41, 43, 50, 52]);
const INLINE = new Set([2, 3, 4, 5, 6, 9, 10, 25]);
const hex = (u: Uint8Array) => (u.length ? NodeBuffer.from(u).toString("hex") : "-");

const lines: string[] = [
  "# knitting golden vectors: name tag w3 w4 w5 w6 static-hex region-hex ('-' = none)",
  `# knitting ${pkg.default.version} commit ${commit}; Bun ${Bun.version}; generated by tests/interop/gen_vectors.ts`,
];
for (const [name, value] of cases) {
  const lockSector = new SharedArrayBuffer(lock.PAYLOAD_LOCK_SECTOR_BYTE_LENGTH);
  const payload = new SharedArrayBuffer(1 << 20);
  const headersBuffer = new Uint32Array(lock.HEADER_U32_LENGTH);
  const encode = codec.encodePayload({ lockSector, headersBuffer, payload: { sab: payload } });
  const task = lock.makeTask();
  task.value = value;
  if (encode(task, 0) !== true) throw new Error(`knitting refused case ${name}`);
  const w = Array.from(task.slice(0, 8)) as number[];
  const tag = w[2];
  const st = new Uint8Array(headersBuffer.buffer, 0, 512);
  const arena = new Uint8Array(payload, 64);
  let stat = new Uint8Array(0), region = new Uint8Array(0);
  if (STATIC.has(tag)) stat = st.slice(0, w[5]);
  else if (WORDS.has(tag)) stat = st.slice(0, 32);
  else if (ENV_STATIC_HEADER.has(tag)) {
    stat = st.slice(0, w[5]);
    region = arena.slice(w[3], w[3] + w[4]);
  } else if (ENV_DYNAMIC_HEADER.has(tag)) region = arena.slice(w[3], w[3] + w[5] + w[4]);
  else if (!INLINE.has(tag)) region = arena.slice(w[3], w[3] + w[5]);
  const h = (x: number) => (x >>> 0).toString(16);
  lines.push([name, tag, h(w[3]), h(w[4]), h(w[5]), h(w[6]), hex(stat), hex(region)].join(" "));
}
writeFileSync(out, lines.join("\n") + "\n");
console.error(`gen_vectors: ${cases.length} cases -> ${out}`);
