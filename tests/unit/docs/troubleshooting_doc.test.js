// docs/troubleshooting.md quotes the configuration refusals exactly as the filter writes them (the table
// tests/shared/config_mistakes.js, which the parser and a started Envoy are held to).
const fs = require("node:fs");
const path = require("node:path");
const { CONFIG_MISTAKES, STRUCT_MESSAGE } = require("../../shared/config_mistakes");

const DOC = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "troubleshooting.md"), "utf8");
// Shown shortened in the page (its list of known fields is long).
const SHORTENED = ["an unknown field far from any known one"];

test.each(CONFIG_MISTAKES.filter((m) => !SHORTENED.includes(m.name)).map((m) => [m.name, m.message]))(
  "docs/troubleshooting.md quotes %s as the filter writes it", (_, message) => {
    expect(DOC).toContain(`invalid configuration: ${message}`);
  });

test("docs/troubleshooting.md quotes the Struct configuration's refusal as the filter writes it", () => {
  expect(DOC).toContain(`invalid configuration: ${STRUCT_MESSAGE}`);
});
