// A mock OpenAI-compatible model service for the docker-compose example:
//   node envoy/mock_server.mjs NAME PORT [STATUS]
// STATUS (default 200) is what it answers to every request; 503 makes a failing primary.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { startMock } = require("../tests/e2e/support/mock_model.js");

const [name = "mock", port = "8000", status = "200"] = process.argv.slice(2);
const mock = await startMock(name, { port: Number(port), host: process.env.MOCK_HOST ?? "127.0.0.1" });
mock.behave({ status: Number(status) });
console.log(`${name} listening on ${process.env.MOCK_HOST ?? "127.0.0.1"}:${mock.port}, answering ${status}`);
