/** Option helpers shared by the bench entry points. */

/**
 * Parses `--only a,b` against the known ids (order of `known` is kept). Empty or undefined means
 * all. Unknown ids throw with the list of valid ones.
 */
export function parseOnly<T extends string>(spec: string | undefined, known: readonly T[]): T[] {
  if (spec === undefined || spec.trim() === '') return [...known];
  const asked = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = asked.filter((a) => !(known as readonly string[]).includes(a));
  if (bad.length) throw new Error(`--only: unknown ${bad.join(', ')} (choose from ${known.join(', ')})`);
  return known.filter((k) => asked.includes(k));
}
