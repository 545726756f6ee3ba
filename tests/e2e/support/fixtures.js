// Shared lifecycle for end-to-end test files: mock model services started once per file, reset to
// their default behaviour before every test, and stopped with every Envoy when the file is done.
const { stopAllEnvoys } = require("./envoy");
const { startMock, stopAllMocks } = require("./mock_model");

/** `names`: key -> mock name. Returns an object whose keys hold the started mocks. */
function useMocks(names) {
  const mocks = {};
  beforeAll(async () => {
    const keys = Object.keys(names);
    const started = await Promise.all(keys.map((k) => startMock(names[k])));
    keys.forEach((k, i) => { mocks[k] = started[i]; });
  });
  beforeEach(() => {
    for (const m of Object.values(mocks)) {
      m.reset();
      m.behave({});
    }
  });
  afterAll(async () => {
    await stopAllEnvoys();
    await stopAllMocks();
  });
  return mocks;
}

module.exports = { useMocks };
