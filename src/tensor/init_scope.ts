/**
 * Random initialisation skipped while a model is built only to be loaded (transformers'
 * `no_init_weights`, torch's `skip_init`): drawing the 135M normal values of a SmolLM2-sized model
 * costs seconds, and the file overwrites every one. Inside the scope the random fills
 * (`Tensor.randn`, `Tensor.uniform`, the models' re-initialisers) write zeros and draw nothing.
 */
let depth = 0;

/** Runs `build` with random fills skipped; the caller must then write every parameter. */
export function withoutRandomInit<T>(build: () => T): T {
  depth++;
  try {
    return build();
  } finally {
    depth--;
  }
}

/** Whether a random fill should write zeros instead of drawing (inside `withoutRandomInit`). */
export function randomInitSkipped(): boolean {
  return depth > 0;
}
