/**
 * Certificates for the TLS tests, made with openssl in a test's folder: a
 * self-signed one (a server's own, or a CA), or one signed by such a CA.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A PEM certificate and its key, also written as `<name>.pem` / `<name>.key` in the folder. */
export interface TestCert {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** What to make: subject CN, optional subjectAltName (`IP:127.0.0.1`), and the signing CA's name (self-signed without). */
export interface CertSpec {
  readonly cn: string;
  readonly san?: string;
  readonly ca?: string;
}

/** Makes certificate `name` in `dir` (an RSA 2048 key, valid one day). */
export function makeCert(dir: string, name: string, spec: CertSpec): TestCert {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const common = ["-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${spec.cn}`, "-keyout", `${name}.key`];
  if (spec.ca === undefined) {
    const san = spec.san === undefined ? [] : ["-addext", `subjectAltName=${spec.san}`];
    openssl("req", "-x509", ...common, "-days", "1", ...san, "-out", `${name}.pem`);
  } else {
    openssl("req", ...common, "-out", `${name}.csr`);
    writeFileSync(
      join(dir, `${name}.ext`),
      spec.san === undefined ? "basicConstraints=CA:FALSE\n" : `subjectAltName=${spec.san}\n`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${spec.ca}.pem`,
      "-CAkey",
      `${spec.ca}.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  }
  return { cert: readFileSync(join(dir, `${name}.pem`)), key: readFileSync(join(dir, `${name}.key`)) };
}
