// Types for harness-env.mjs (imported by the TypeScript test harness).
export declare const harness: Readonly<{
  repoRoot: string;
  cacheDir: string;
  node24Spec: string;
  node24Prefix: string;
  node24Dir: string;
  node24: string;
  codeServerVersion: string;
  codeServerDir: string;
  codeServerEntry: string;
  codeServerComplete: string;
  chromium: string;
}>;
