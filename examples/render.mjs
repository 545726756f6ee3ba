#!/usr/bin/env node
// node examples/render.mjs FILE --out OUT
// Writes FILE with every ${NAME} replaced by the environment variable NAME to OUT, readable by you alone
// (it holds your keys; without --out it is printed). Keys and account names so stay out of the files
// you commit. An unset or empty variable stops it, naming the variable.
import fs from "node:fs";
import { pathToFileURL } from "node:url";

/** `text` with each ${NAME} replaced from `env`; throws naming every variable that is unset or unusable. */
export function renderText(text, env, what) {
  const missing = new Set();
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => {
    const value = env[name];
    if (value === undefined || value === "") {
      missing.add(name);
      return "";
    }
    // Values go into YAML/JSON strings: a quote, backslash or line break would change the file's meaning.
    if (/["'\\\r\n]/.test(value)) throw new Error(`${name} contains a quote, backslash or line break (a key or a host name never does)`);
    return value;
  });
  if (missing.size > 0) {
    const names = [...missing];
    throw new Error(`${what}: set ${names.join(", ")} in the environment first (export ${names[0]}=...)`);
  }
  return out;
}

/** Writes `text` to `file` readable and writable by its owner alone (it holds keys), or prints it without a file. */
export function writePrivate(file, text) {
  if (file === undefined) return process.stdout.write(text);
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600); // an existing file keeps its mode on write
}

/** Takes `--out FILE` out of `args` (undefined when absent). */
export function takeOut(args) {
  const i = args.indexOf("--out");
  if (i < 0) return undefined;
  const [, file] = args.splice(i, 2);
  if (!file) throw new Error("--out needs a file name");
  return file;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  try {
    const out = takeOut(args);
    const [file, ...rest] = args;
    if (!file || rest.length > 0) {
      console.error("usage: node examples/render.mjs FILE [--out OUT]   (replaces each ${NAME} with the environment variable NAME)");
      process.exit(2);
    }
    writePrivate(out, renderText(fs.readFileSync(file, "utf8"), process.env, file));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
