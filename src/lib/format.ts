// Numbers and virtual durations as reports print them, independent of the locale.

/** An integer with thousands separators (`12,345`), independent of the locale. */
export function num(n: number): string {
  const s = String(Math.abs(Math.trunc(n)));
  const grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${grouped}` : grouped;
}

/** `n thing` or `n things`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${num(n)} ${n === 1 ? one : many}`;
}

/** Virtual time: ns, µs or ms with three significant digits. */
export function formatNs(ns: number): string {
  if (ns < 1000) return `${ns} ns`;
  if (ns < 1_000_000) return `${(ns / 1000).toPrecision(3)} µs`;
  return `${(ns / 1_000_000).toPrecision(3)} ms`;
}

/** `n` with `digits` decimals and thousands separators (`1,170.7`). */
export function fixed(n: number, digits: number): string {
  const [whole, frac] = Math.abs(n).toFixed(digits).split('.');
  const sign = n < 0 && Number(n.toFixed(digits)) !== 0 ? '-' : '';
  return `${sign}${num(Number(whole))}${frac === undefined ? '' : `.${frac}`}`;
}
