export * from './failure.js';
export * from './measurement.js';
export * from './verdict.js';
export * from './scenario.js';
export * from './observation.js';
export * from './random.js';
export * from './paths.js';
export * from './fet.js';
