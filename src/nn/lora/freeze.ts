/**
 * `--freeze PATTERN`: which parameters of a full model stop training, by name. A pattern is a glob
 * over dotted parameter names (`*` within one name part, `**` across parts: `model.layers.0.*.*`,
 * `**.embed_tokens.weight`) or, written /…/, a regular expression searched in the name; several are
 * separated by commas. A pattern that matches no parameter is refused by name (a typo would
 * otherwise train everything).
 */
import type { Module } from '../module.js';

/** A name test for one pattern: /regex/ or a glob. */
export function parameterPattern(pattern: string): (name: string) => boolean {
  const p = pattern.trim();
  if (p.length >= 2 && p.startsWith('/') && p.endsWith('/')) {
    let re: RegExp;
    try {
      re = new RegExp(p.slice(1, -1));
    } catch (err) {
      throw new Error(`--freeze: ${p} is not a regular expression (${(err as Error).message})`);
    }
    return (name) => re.test(name);
  }
  const body = p.split(/(\*\*|\*|\?)/).map((part) => (part === '**' ? '.*' : part === '*' ? '[^.]*' : part === '?' ? '[^.]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  const re = new RegExp(`^${body}$`);
  return (name) => re.test(name);
}

/**
 * Freezes the parameters the comma-separated `patterns` match (Module.freeze: no gradient, no
 * optimizer state, nothing on the wire). Returns the names frozen; refuses a pattern matching nothing.
 */
export function freezeMatching(model: Module, patterns: string): string[] {
  const tests = patterns.split(',').filter((s) => s.trim() !== '').map((s) => [s.trim(), parameterPattern(s)] as const);
  if (tests.length === 0) throw new Error('--freeze: give a pattern, e.g. "model.embed_tokens.*" or "/layers\\.[0-3]\\./"');
  const names = model.namedParameters().map(([n]) => n);
  for (const [text, test] of tests) {
    if (!names.some(test)) throw new Error(`--freeze: ${text} matches no parameter (they are named like ${names.slice(0, 3).join(', ')})`);
  }
  return model.freeze((n) => tests.some(([, test]) => test(n)));
}
