// docs/design.md's promises about the source's shape, read from the import lines of assembly/: the
// pure core imports nothing outside itself, imports point one way (main -> roles -> host -> abi ->
// core), the roles never import each other, no file imports itself back through others, and no file
// grows past the size a reader can hold.
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..", "..");
const ASSEMBLY = path.join(ROOT, "assembly");
const MAX_LINES = 450;

/** Every .ts file under assembly/, as a path relative to it ("core/policy.ts"). */
function sources(dir = ASSEMBLY) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") ? [path.relative(ASSEMBLY, full).split(path.sep).join("/")] : [];
  });
}

/** The files `file` imports (relative imports only), as paths relative to assembly/. */
function importsOf(file) {
  const text = fs.readFileSync(path.join(ASSEMBLY, file), "utf8");
  const specs = [...text.matchAll(/^\s*(?:import|export)\b[^"';]*?(?:from\s+)?"(\.[^"]+)"/gm)].map((m) => m[1]);
  return specs.map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)) + ".ts");
}

/** The top folder a file belongs to: "core", "abi", "host", "dispatch", "upstream", "streamed", or "main". */
const folderOf = (file) => (file.includes("/") ? file.split("/")[0] : "main");

// What each folder may import (besides itself); see docs/design.md.
const MAY_IMPORT = {
  core: [],
  abi: ["core"],
  host: ["abi", "core"],
  dispatch: ["host", "abi", "core"],
  upstream: ["host", "abi", "core"],
  streamed: ["host", "abi", "core"],
  main: ["dispatch", "upstream", "streamed", "host", "abi", "core"],
};

const FILES = sources();
const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

describe("docs/design.md: the source's layout", () => {
  test("every relative import names a file of assembly/", () => {
    const missing = [...GRAPH].flatMap(([f, targets]) => targets.filter((t) => !FILES.includes(t)).map((t) => `${f} -> ${t}`));
    expect(missing).toEqual([]);
    expect(FILES.length).toBeGreaterThan(40);
  });

  test("the folders are the ones design.md names", () => {
    expect([...new Set(FILES.map(folderOf))].sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  test("imports point one way: core imports only core, the roles never import each other", () => {
    const wrong = [...GRAPH].flatMap(([f, targets]) => targets
      .filter((t) => folderOf(t) !== folderOf(f) && !MAY_IMPORT[folderOf(f)].includes(folderOf(t)))
      .map((t) => `${f} -> ${t}`));
    expect(wrong).toEqual([]);
  });

  test("the pure core declares no host import", () => {
    const hostBound = FILES.filter((f) => folderOf(f) === "core")
      .filter((f) => /@external|declare function/.test(fs.readFileSync(path.join(ASSEMBLY, f), "utf8")));
    expect(hostBound).toEqual([]);
  });

  test("no circular imports", () => {
    const state = new Map(); // 1 = on the current path, 2 = done
    const circles = [];
    const visit = (f, trail) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1) {
        circles.push([...trail.slice(trail.indexOf(f)), f].join(" -> "));
        return;
      }
      state.set(f, 1);
      for (const t of GRAPH.get(f) ?? []) visit(t, [...trail, f]);
      state.set(f, 2);
    };
    for (const f of FILES) visit(f, []);
    expect(circles).toEqual([]);
  });

  test(`no source file over ${MAX_LINES} lines`, () => {
    const long = FILES.map((f) => [f, fs.readFileSync(path.join(ASSEMBLY, f), "utf8").split("\n").length])
      .filter(([, n]) => n > MAX_LINES).map(([f, n]) => `${f}: ${n}`);
    expect(long).toEqual([]);
  });
});
