/**
 * A signature that carries its settings. Peers must agree on their signature exactly; a bare hash
 * tells a user only that something differs. So the signature may end with the settings it was made
 * from (`<text>\u001f{"--lr":"0.1",...}`), still compared as one string, and a refusal names every
 * setting whose values differ, with both values (issue 33 §3). Comm knows nothing of what the
 * settings mean: they are flag names and printable values.
 */
const SEPARATOR = '\u001f';

export function signatureWithSettings(text: string, settings: Readonly<Record<string, string>>): string {
  return `${text}${SEPARATOR}${JSON.stringify(settings)}`;
}

/** The signature's text (what a person reads) and its settings (null when it carries none). */
export function splitSignature(signature: string): { text: string; settings: Record<string, string> | null } {
  const at = signature.indexOf(SEPARATOR);
  if (at < 0) return { text: signature, settings: null };
  try {
    const parsed = JSON.parse(signature.slice(at + 1)) as unknown;
    const ok = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === 'string');
    return { text: signature.slice(0, at), settings: ok ? (parsed as Record<string, string>) : null };
  } catch {
    return { text: signature.slice(0, at), settings: null };
  }
}

/** "--lr: rank 0 has 0.1, rank 1 has 0.2; ..." for every differing setting, or null when neither side carries settings or none differ. */
export function settingsDifference(mine: string, theirs: string, me: string, them: string): string | null {
  const a = splitSignature(mine).settings;
  const b = splitSignature(theirs).settings;
  if (!a || !b) return null;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const differing = keys.filter((k) => a[k] !== b[k]).map((k) => `${k}: ${me} has ${a[k] ?? '(not set)'}, ${them} has ${b[k] ?? '(not set)'}`);
  return differing.length > 0 ? differing.join('; ') : null;
}
