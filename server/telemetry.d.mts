// `node --import @tributary/server/telemetry`: a preload with no exports (see telemetry.mjs).
export {};
