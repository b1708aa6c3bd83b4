// The trust decision for a server certificate no CA vouches for: a modal with subject, issuer, validity and the
// SHA-256 fingerprint, pinned only on an explicit "Trust". Tests pass their answer (modal dialogs are refused in
// the extension-host test mode): true/false, or the fingerprint they expect, which trusts only that certificate.
import * as vscode from 'vscode';
import { certificateLines, sameFingerprint, type CertificateDescription } from '../core/certificate';

export type TrustAnswer = boolean | string | undefined;

export function trustAnswerOf(value: unknown): TrustAnswer {
  return typeof value === 'boolean' || typeof value === 'string' ? value : undefined;
}

export async function askTrust(
  where: string,
  cert: CertificateDescription,
  pinned: string | undefined,
  answer: TrustAnswer,
): Promise<boolean> {
  if (typeof answer === 'string') return sameFingerprint(answer, cert.fingerprint);
  if (answer !== undefined) return answer;
  const lines = certificateLines(cert).join('\n');
  const message = pinned ? `The certificate of ${where} has changed` : `Trust the certificate of ${where}?`;
  const detail = pinned
    ? `Pinned until now: SHA-256 ${pinned}\n\nThe server now presents:\n${lines}\n\n` +
      'Trust it only if you replaced the certificate on the NAS yourself; otherwise someone may be ' +
      'intercepting the connection. Until you do, Pixels sends no API key to this server.'
    : `No certificate authority on this computer vouches for it (a TrueNAS serves its own self-signed ` +
      `certificate until you install another).\n\n${lines}\n\n` +
      'Compare the SHA-256 fingerprint with the one in the TrueNAS web UI (Credentials → Certificates) ' +
      'before you trust it. Pixels pins it and refuses any other certificate from this server.';
  const action = pinned ? 'Trust New Certificate' : 'Trust';
  const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, action);
  return choice === action;
}
