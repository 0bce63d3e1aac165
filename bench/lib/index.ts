/** Shared benchmark helpers: statistics, the timing method, tables, child processes, Python, machine info. */
export * from './stats.js';
export * from './windows.js';
export * from './table.js';
export * from './child.js';
export * from './python.js';
export * from './machine.js';
export * from './args.js';
