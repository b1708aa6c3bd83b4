// Self-signed certificates made at test time with the openssl CLI, for the TLS tests (TrueNAS pinning, the
// simulator over wss://, Incus over HTTPS). One place, so every test gets the same kind of certificate.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCert {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** SHA-256 fingerprint as openssl prints it (AA:BB:…). */
  fingerprint: string;
}

/** Writes `<name>.crt` / `<name>.key` into `dir`: P-256, two days, CN `cn` (default `name`), optional SAN. */
export function makeSelfSignedCert(
  dir: string,
  name: string,
  options: { cn?: string; san?: string } = {},
): TestCert {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${options.cn ?? name}`,
      ...(options.san ? ['-addext', `subjectAltName=${options.san}`] : []),
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'pipe' },
  );
  const out = execFileSync('openssl', ['x509', '-in', certPath, '-noout', '-fingerprint', '-sha256'], {
    encoding: 'utf8',
  });
  return {
    certPath,
    keyPath,
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    fingerprint: out.trim().split('=')[1],
  };
}
