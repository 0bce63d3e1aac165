import { type ZodTypeAny, z } from 'zod';

/** The keys a schema's mapping at `path` accepts (for "did you mean"); none when it is no mapping. */
export function knownKeys(schema: ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  let s: ZodTypeAny | undefined = unwrap(schema);
  for (const step of path) {
    s = s instanceof z.ZodObject ? unwrap((s.shape as Record<string, ZodTypeAny>)[String(step)]) : undefined;
    if (!s) return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

/** Past optional, refinements and the like, to the schema of the value. */
function unwrap(s: ZodTypeAny | undefined): ZodTypeAny | undefined {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as ZodTypeAny;
    else if (s instanceof z.ZodEffects) s = s.innerType() as ZodTypeAny;
    else if (s instanceof z.ZodDefault) s = s.removeDefault() as ZodTypeAny;
    else return s;
  }
}
