/** The order statistics live in src/util/stats.ts (the trainer uses them too). */
export { type Summary, mean, median, quantile, sorted, summarize } from '../../src/util/stats.js';
