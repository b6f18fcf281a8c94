import { useState } from 'preact/hooks';
import { call, setCredential, type Credential, type Whoami } from '../api';

/** Shown when the admin API answers 401: a token, or a user and password. */
export function Login({ onLogin, failed }: { onLogin: (w: Whoami) => void; failed?: string }) {
  const [mode, setMode] = useState<'token' | 'basic'>('token');
  const [token, setToken] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(failed);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const cred: Credential = mode === 'token' ? { kind: 'token', token: token.trim() } : { kind: 'basic', user, password };
    setBusy(true);
    setError(undefined);
    try {
      const a = await call<Whoami & { error?: string }>('GET', '/api/whoami', undefined, cred);
      if (a.status === 200) {
        setCredential(cred);
        onLogin(a.body);
      } else if (a.status === 401) {
        setError(a.body?.error ? `Not signed in: ${a.body.error}` : 'Not signed in: the credentials were refused.');
      } else {
        setError(a.body?.error ?? `Sign-in failed: HTTP ${a.status}`);
      }
    } catch (err) {
      setError(`Sign-in failed: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="login-wrap">
      <form class="login" onSubmit={submit} data-testid="login-form">
        <h1>meshgate console</h1>
        <p class="muted">The admin API asks for credentials.</p>
        <div class="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={mode === 'token'} class={mode === 'token' ? 'tab active' : 'tab'} onClick={() => setMode('token')}>
            Token
          </button>
          <button type="button" role="tab" aria-selected={mode === 'basic'} class={mode === 'basic' ? 'tab active' : 'tab'} onClick={() => setMode('basic')}>
            User and password
          </button>
        </div>
        {mode === 'token' ? (
          <label>
            Admin token
            <input type="password" name="token" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
          </label>
        ) : (
          <>
            <label>
              User
              <input type="text" name="user" autocomplete="username" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} required />
            </label>
            <label>
              Password
              <input type="password" name="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
            </label>
          </>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button class="btn primary" type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </div>
  );
}
