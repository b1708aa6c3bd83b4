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

/** openssl req arguments for a new P-256 key (no passphrase) with this subject, written to `keyPath`. */
function newKeyArgs(subject: string, keyPath: string, san?: string): string[] {
  return [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    subject,
    ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    '-keyout',
    keyPath,
  ];
}

function readCert(certPath: string, keyPath: string): TestCert {
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

/**
 * Writes `<name>.crt` / `<name>.key` into `dir`: P-256, two days, subject `/CN=<cn>` (default `name`) or `subject`
 * as openssl spells it, optional SAN.
 */
export function makeSelfSignedCert(
  dir: string,
  name: string,
  options: { cn?: string; san?: string; subject?: string } = {},
): TestCert {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const subject = options.subject ?? `/CN=${options.cn ?? name}`;
  execFileSync(
    'openssl',
    ['req', '-x509', ...newKeyArgs(subject, keyPath, options.san), '-days', '2', '-out', certPath],
    {
      stdio: 'pipe',
    },
  );
  return readCert(certPath, keyPath);
}

/** Writes `<name>.crt` / `<name>.key` into `dir`: a P-256 certificate for `subject`, two days, issued by `ca`. */
export function makeCaSignedCert(dir: string, name: string, ca: TestCert, subject: string): TestCert {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  execFileSync('openssl', ['req', ...newKeyArgs(subject, keyPath), '-out', csrPath], { stdio: 'pipe' });
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      csrPath,
      '-CA',
      ca.certPath,
      '-CAkey',
      ca.keyPath,
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      certPath,
    ],
    { stdio: 'pipe' },
  );
  return readCert(certPath, keyPath);
}
