// auth.* (plugins/auth.py, 25.04+): login_ex with API_KEY_PLAIN, the legacy login calls, me, logout.
// A wrong key is a successful AUTH_ERR result, not an error. A valid key used over insecure transport (the
// `treatAsRemote` switch on a plain ws:// server) is revoked and answered EXPIRED; later logins with it fail.
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { checkArgCount, validateModel } from './args.js';
import type { CallEnv, Registry, SimContext } from './context.js';
import { isSimObject, type SimObject, type SimValue } from './ejson.js';
import { CallError, ERRNO, ValidationErrors, type ValidationItem } from './errors.js';

const MECHANISMS = ['API_KEY_PLAIN', 'PASSWORD_PLAIN', 'TOKEN_PLAIN', 'OTP_TOKEN'];

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function userInfo(ctx: SimContext, username: string): SimObject {
  return {
    pw_name: username,
    pw_gecos: 'Local Administrator',
    pw_dir: `/home/${username}`,
    pw_shell: '/usr/bin/zsh',
    pw_uid: 950,
    pw_gid: 950,
    grouplist: [950, 544],
    sid: null,
    source: 'LOCAL',
    local: true,
    attributes: {},
    two_factor_config: { secret_configured: false, interval: 30, otp_digits: 6 },
    privilege: {
      roles: new Set<SimValue>(['FULL_ADMIN', 'READONLY_ADMIN']),
      allowlist: [{ method: '*', resource: '*' }],
      web_shell: true,
      webui_access: true,
    },
    account_attributes: ctx.version === '25.04' ? ['LOCAL', 'API_KEY'] : ['LOCAL', 'API_KEY', 'SYS_ADMIN'],
  };
}

type KeyCheck = 'SUCCESS' | 'AUTH_ERR' | 'EXPIRED';

function checkKey(env: CallEnv, username: string, apiKey: string): KeyCheck {
  const auth = env.ctx.auth;
  const id = Number.parseInt(apiKey.split('-')[0] ?? '', 10);
  const expectedId = Number.parseInt(auth.apiKey.split('-')[0] ?? '', 10);
  if (!Number.isFinite(id) || id !== expectedId || !sameSecret(apiKey, auth.apiKey)) return 'AUTH_ERR';
  if (username !== auth.username) return 'AUTH_ERR';
  if (auth.revoked) return 'AUTH_ERR';
  if (!env.conn.secureTransport) {
    auth.revoked = true; // "API key revoked due to insecure transport."
    return 'EXPIRED';
  }
  env.conn.session = { username, loginAt: new Date(), apiKeyId: id, loginId: randomUUID() };
  return 'SUCCESS';
}

function loginEx(env: CallEnv, args: SimValue[]): SimValue {
  checkArgCount(args, 1);
  if (args.length === 0) throw new ValidationErrors([['login_data', 'Field required', ERRNO.EINVAL]]);
  const data = args[0];
  if (!isSimObject(data))
    throw new ValidationErrors([['login_data', 'Input should be a valid dictionary', ERRNO.EINVAL]]);
  const mechanism = data.mechanism;
  if (typeof mechanism !== 'string') {
    throw new ValidationErrors([
      ['login_data', "Unable to extract tag using discriminator 'mechanism'", ERRNO.EINVAL],
    ]);
  }
  if (!MECHANISMS.includes(mechanism)) {
    throw new ValidationErrors([
      [
        'login_data',
        `Input tag '${mechanism}' found using 'mechanism' does not match any of the expected tags: ${MECHANISMS.map((m) => `'${m}'`).join(', ')}`,
        ERRNO.EINVAL,
      ],
    ]);
  }
  const errors: ValidationItem[] = [];
  const prefix = `login_data.${mechanism}`;
  const loginOptions = { type: 'dict' as const, default: { user_info: true } };
  const mech = { type: 'str' as const, required: true };
  let parsed: SimObject;
  switch (mechanism) {
    case 'API_KEY_PLAIN':
      parsed = validateModel(
        data,
        prefix,
        {
          mechanism: mech,
          username: { type: 'str', required: true },
          api_key: { type: 'str', required: true },
          login_options: loginOptions,
        },
        errors,
      );
      break;
    case 'PASSWORD_PLAIN':
      parsed = validateModel(
        data,
        prefix,
        {
          mechanism: mech,
          username: { type: 'str', required: true },
          password: { type: 'str', required: true },
          login_options: loginOptions,
        },
        errors,
      );
      break;
    case 'TOKEN_PLAIN':
      parsed = validateModel(
        data,
        prefix,
        { mechanism: mech, token: { type: 'str', required: true }, login_options: loginOptions },
        errors,
      );
      break;
    default:
      parsed = validateModel(
        data,
        prefix,
        { mechanism: mech, otp_token: { type: 'str', required: true }, login_options: loginOptions },
        errors,
      );
  }
  if (errors.length) throw new ValidationErrors(errors);
  if (mechanism === 'OTP_TOKEN')
    throw new CallError('OTP_TOKEN: no authentication in progress', ERRNO.EINVAL);
  if (mechanism !== 'API_KEY_PLAIN') return { response_type: 'AUTH_ERR' }; // the simulator knows no passwords or tokens
  const outcome = checkKey(env, String(parsed.username), String(parsed.api_key));
  if (outcome !== 'SUCCESS') return { response_type: outcome };
  const options = isSimObject(parsed.login_options) ? parsed.login_options : {};
  const wantInfo = options.user_info !== false;
  return {
    response_type: 'SUCCESS',
    user_info: wantInfo ? userInfo(env.ctx, String(parsed.username)) : null,
    authenticator: 'LEVEL_1',
  };
}

export function registerAuth(registry: Registry): void {
  registry.add({ name: 'auth.login_ex', noAuth: true, handler: async (env, args) => loginEx(env, args) });
  registry.add({
    name: 'auth.login_ex_continue',
    noAuth: true,
    handler: async () => {
      throw new CallError('OTP_TOKEN: no authentication in progress', ERRNO.EINVAL);
    },
  });
  registry.add({
    name: 'auth.mechanism_choices',
    noAuth: true,
    handler: async () => MECHANISMS,
  });
  registry.add({
    name: 'auth.login_with_api_key',
    noAuth: true,
    handler: async (env, args) => {
      checkArgCount(args, 1);
      if (typeof args[0] !== 'string')
        throw new ValidationErrors([['api_key', 'Input should be a valid string', ERRNO.EINVAL]]);
      // 25.04+: looks up the key's owner and goes through login_ex. An unknown key id sleeps 1-2 s first.
      const id = Number.parseInt(args[0].split('-')[0] ?? '', 10);
      if (id !== Number.parseInt(env.ctx.auth.apiKey.split('-')[0] ?? '', 10)) {
        await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000));
        return false;
      }
      return checkKey(env, env.ctx.auth.username, args[0]) === 'SUCCESS';
    },
  });
  registry.add({
    name: 'auth.login',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 3);
      return false;
    },
  });
  registry.add({
    name: 'auth.login_with_token',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 1);
      return false;
    },
  });
  registry.add({
    name: 'auth.logout',
    handler: async (env) => {
      env.conn.session = null;
      return true;
    },
  });
  registry.add({
    name: 'auth.me',
    handler: async (env) => userInfo(env.ctx, env.conn.session!.username),
  });
  registry.add({
    name: 'auth.generate_token',
    handler: async (_env, args) => {
      checkArgCount(args, 4);
      return randomBytes(32).toString('base64url');
    },
  });
}
