// Two projects: the unit tests (the module in a Node wasm host) and the end-to-end tests (a real Envoy).
// testTimeout is read from the global configuration, so it is set at the top level; each project
// repeats it so that it also holds when a project is run on its own.
const TIMEOUT = 60000;

module.exports = {
  testTimeout: TIMEOUT,
  // Every test file stops its servers (fixtures.js, try/finally); this only guarantees that a test
  // that failed half-way can never keep CI waiting.
  forceExit: true,
  projects: [
    { displayName: "unit", testEnvironment: "node", testTimeout: TIMEOUT, testMatch: ["<rootDir>/tests/unit/**/*.test.js"] },
    { displayName: "e2e", testEnvironment: "node", testTimeout: TIMEOUT, testMatch: ["<rootDir>/tests/e2e/**/*.test.js"] },
  ],
};
