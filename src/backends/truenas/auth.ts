// auth.login_ex with API_KEY_PLAIN, and one clear sentence for every response_type.
import { NotAuthenticatedError, UnsupportedError } from '../../core/errors';

export interface LoginResult {
  response_type: string;
  username?: string;
  urls?: string[];
}

export function loginParams(username: string, apiKey: string): unknown[] {
  return [{ mechanism: 'API_KEY_PLAIN', username, api_key: apiKey, login_options: { user_info: false } }];
}

/** The server refused the key: `response` is what it answered (AUTH_ERR: wrong key, user or revoked key; EXPIRED). */
export class LoginRefusedError extends NotAuthenticatedError {
  constructor(
    message: string,
    readonly response: 'AUTH_ERR' | 'EXPIRED',
    /** Set when the key was checked on its own and belongs to this other user. */
    readonly keyOwner?: string,
  ) {
    super(message);
  }
}

/** Returns normally on SUCCESS; otherwise throws the error the user should see. */
export function checkLoginResult(
  result: unknown,
  host: string,
  username: string,
  insecureTransport: boolean,
): void {
  const type = (result as LoginResult | null)?.response_type;
  switch (type) {
    case 'SUCCESS':
      return;
    case 'AUTH_ERR':
      throw new LoginRefusedError(
        `${host} refused the API key for user "${username}": the key is mistyped, was deleted or revoked, or ` +
          'belongs to another user (TrueNAS answers the same for each). Check it in the TrueNAS UI under ' +
          'Credentials → Users → API Keys.',
        'AUTH_ERR',
      );
    case 'EXPIRED':
      throw new LoginRefusedError(
        `${host} says the API key for user "${username}" has expired or was revoked` +
          (insecureTransport
            ? ' — TrueNAS revokes a key that was sent over an insecure (non-TLS) connection'
            : ' (TrueNAS revokes keys that were ever sent over an insecure, non-TLS connection)') +
          '. Create a new API key in the TrueNAS UI and store it again.',
        'EXPIRED',
      );
    case 'OTP_REQUIRED':
      throw new UnsupportedError(
        `${host} asks for a one-time password (two-factor authentication) for user "${username}"; ` +
          'API keys for Pixels must belong to a user that can log in without an OTP.',
      );
    case 'REDIRECT': {
      const urls = (result as LoginResult).urls ?? [];
      throw new NotAuthenticatedError(
        `${host} is a standby controller and redirects logins` +
          (urls.length ? ` to ${urls.join(', ')}` : '') +
          '; configure the active controller (or the HA virtual IP) instead.',
      );
    }
    default:
      throw new NotAuthenticatedError(
        `${host} answered the login (auth.login_ex) with an unexpected response (${typeof type === 'string' ? type.slice(0, 80) : 'none'}).`,
      );
  }
}
