// Reads the code blocks of the user documents (README.md, docs/*.md), so that tests run what the documents
// print instead of a copy that could drift from them.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..", "..");

/** README.md and every docs/*.md, as [{ file (relative), text }]. */
function userDocuments() {
  const docs = fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => path.join("docs", f));
  return ["README.md", ...docs].map((file) => ({ file, text: fs.readFileSync(path.join(ROOT, file), "utf8") }));
}

/** Every fenced block of `text` whose info string is `lang`, as strings (a block indented in a list is de-indented). */
function fencedBlocks(text, lang) {
  const blocks = [];
  const re = /^( *)```([^\n]*)\n([\s\S]*?)^\1```/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[2].trim() === lang) blocks.push(m[1] ? m[3].replace(new RegExp(`^${m[1]}`, "gm"), "") : m[3]);
  }
  return blocks;
}

/**
 * The shell commands of a ```sh block: continuation lines joined, comments and blank lines dropped,
 * `a && b` split into its commands.
 */
function shellCommands(block) {
  const joined = block.replace(/\\\n\s*/g, " ");
  const commands = [];
  for (const line of joined.split("\n")) {
    const code = line.replace(/(^|\s)#.*$/, "").trim();
    if (code) commands.push(...code.split(/\s+&&\s+/).map((c) => c.trim()));
  }
  return commands;
}

/** The README's complete Envoy configuration: its one ```yaml block with static_resources. */
function readmeEnvoyConfig(readme) {
  const found = fencedBlocks(readme, "yaml").filter((b) => b.includes("static_resources:"));
  if (found.length !== 1) throw new Error(`README.md: expected one yaml block with static_resources, found ${found.length}`);
  return found[0];
}

/** The README's curl request: { path, headers, body } read from its `curl ... -H ... -d '...'` command. */
function readmeCurl(readme) {
  const curls = fencedBlocks(readme, "sh").flatMap(shellCommands).filter((c) => c.startsWith("curl "));
  if (curls.length !== 1) throw new Error(`README.md: expected one curl command, found ${curls.length}`);
  const curl = curls[0];
  const url = /\shttp:\/\/127\.0\.0\.1:10000(\/\S*)/.exec(curl);
  const body = /\s-d '([^']*)'/.exec(curl);
  if (!url || !body) throw new Error(`README.md: cannot read the curl command's URL or body: ${curl}`);
  const headers = {};
  for (const h of curl.matchAll(/\s-H '([^:']+):\s*([^']*)'/g)) headers[h[1].toLowerCase()] = h[2];
  return { path: url[1], headers, body: body[1] };
}

module.exports = { ROOT, userDocuments, fencedBlocks, shellCommands, readmeEnvoyConfig, readmeCurl };
