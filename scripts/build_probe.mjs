// Builds the test-only probe modules (tests/e2e/support/probe/NAME.wat -> build/NAME.wasm: the VM probe, the
// refusing neighbour, the handoff chain's carrier for an emulated route-fallback redirect) with binaryen, which AssemblyScript already brings. The product module never
// contains them.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import binaryen from "binaryen";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
fs.mkdirSync(path.join(root, "build"), { recursive: true });
for (const name of ["vm_probe", "refuser", "chain_carrier"]) {
  const mod = binaryen.parseText(fs.readFileSync(path.join(root, `tests/e2e/support/probe/${name}.wat`), "utf8"));
  if (!mod.validate()) throw new Error(`${name}.wat does not validate`);
  fs.writeFileSync(path.join(root, `build/${name}.wasm`), mod.emitBinary());
}
