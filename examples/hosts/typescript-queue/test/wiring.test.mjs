// The README says how many lines wire Lookout into the host: the lines ending in `// lookout`.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { hostDir } from "./harness.mjs";

test("the README counts the lines that wire Lookout", () => {
  const src = path.join(hostDir, "src");
  const tagged = fs
    .readdirSync(src)
    .filter((f) => f.endsWith(".mjs"))
    .flatMap((f) => fs.readFileSync(path.join(src, f), "utf8").split("\n"))
    .filter((l) => l.trimEnd().endsWith("// lookout"));
  const said = fs.readFileSync(path.join(hostDir, "README.md"), "utf8").match(/\*\*(\d+) lines\*\*/);
  assert.ok(said, "README.md should say **N lines**");
  assert.equal(Number(said[1]), tagged.length, tagged.join("\n"));
});
