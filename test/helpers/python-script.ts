/**
 * Runs a Python snippet with the repository's Python client importable
 * (`client-sdk/python` on `PYTHONPATH`, Debian's `/usr/bin/python3` or
 * `TRIBUTARY_PYTHON`).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const PYTHON_DIR = fileURLToPath(new URL("../../client-sdk/python", import.meta.url));
const PYTHON = process.env.TRIBUTARY_PYTHON ?? "/usr/bin/python3";
const execFileP = promisify(execFile);

/** Runs `python -c <lines joined> <args…>`; resolves with its output, rejects when it exits non-zero. */
export function runPythonScript(
  lines: readonly string[],
  args: readonly string[],
): Promise<{ stdout: string; stderr: string }> {
  return execFileP(PYTHON, ["-c", lines.join("\n"), ...args], {
    cwd: PYTHON_DIR,
    env: { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONDONTWRITEBYTECODE: "1" },
  });
}
