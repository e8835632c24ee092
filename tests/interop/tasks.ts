// The task module of the interop tests and benchmark: the JavaScript twins of the C tasks the
// knit worker serves by name (interop/tasks.c). A knitting host needs the definitions (names,
// the `slow` timeout); its own JS worker runs these bodies, the knit worker its C tasks.
const dir = process.env.KNIT_KNITTING_DIR;
if (!dir) throw new Error("KNIT_KNITTING_DIR must point at a knitting checkout");
const { task } = await import(`${dir}/knitting.ts`);

export const add1 = task({ f: (n: number) => n + 1 });
export const echo = task({ f: (v: unknown) => v });
export const fail = task({
  f: (m: string) => {
    throw new TypeError(m, { cause: { code: 7 } });
  },
});
export const int16_array = task({ f: () => new Int16Array([1, -2, 3]) });
export const sleep = task({
  f: (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)),
});
export const slow = task({
  f: (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)),
  timeout: 50,
});
export const throw_string = task({
  f: (s: string) => {
    throw s;
  },
});
export const until_aborted = task({
  abortSignal: true,
  f: async (_: unknown, signal: { hasAborted(): boolean }) => {
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      if (signal.hasAborted()) return "aborted";
      await new Promise((r) => setTimeout(r, 1));
    }
    return "done";
  },
});
