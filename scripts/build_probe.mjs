// Builds the test-only VM probe (tests/e2e/probe/vm_probe.wat -> build/vm_probe.wasm) with binaryen,
// which AssemblyScript already brings. The product module never contains it.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import binaryen from "binaryen";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const mod = binaryen.parseText(fs.readFileSync(path.join(root, "tests/e2e/probe/vm_probe.wat"), "utf8"));
if (!mod.validate()) throw new Error("vm_probe.wat does not validate");
fs.mkdirSync(path.join(root, "build"), { recursive: true });
fs.writeFileSync(path.join(root, "build/vm_probe.wasm"), mod.emitBinary());
