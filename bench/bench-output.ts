/** Where every benchmark's table goes: stdout, and `.bench-out/<name>.md` for BENCHMARKS.md. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** Prints `table` and writes it to `.bench-out/<name>.md`. */
export function publishTable(name: string, table: string): void {
  console.log(table);
  mkdirSync(join(root, ".bench-out"), { recursive: true });
  writeFileSync(join(root, `.bench-out/${name}.md`), `${table}\n`);
}
