import 'uplot/dist/uPlot.min.css';
import '../styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, getCredential, onUnauthorized, setCredential, type Whoami } from './api';
import { useHashRoute } from './hooks';
import { ConfigPage } from './pages/config';
import { Login } from './pages/login';
import { OverviewPage } from './pages/overview';
import { RegistriesPage } from './pages/registries';
import { ResiliencePage } from './pages/resilience';
import { RoutesPage } from './pages/routes';
import { ServicesPage } from './pages/services';
import { href, Pill } from './ui';

const PAGES = [
  ['overview', 'Overview'],
  ['services', 'Services'],
  ['routes', 'Routes'],
  ['registries', 'Registries'],
  ['resilience', 'Resilience'],
  ['config', 'Config'],
] as const;

type Auth = { state: 'checking' } | { state: 'login'; failed?: string } | { state: 'in'; who: Whoami | undefined };

function App() {
  const route = useHashRoute();
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });

  useEffect(() => {
    const off = onUnauthorized(() => setAuth({ state: 'login', failed: getCredential() ? 'Your credentials were refused; sign in again.' : undefined }));
    call<Whoami>('GET', '/api/whoami').then(
      (a) => {
        if (a.status === 200) setAuth({ state: 'in', who: a.body });
        else if (a.status === 401) setAuth({ state: 'login' });
        // A gateway without /api/whoami: carry on; a 401 from any page brings the form.
        else setAuth({ state: 'in', who: undefined });
      },
      () => setAuth({ state: 'in', who: undefined }),
    );
    return () => {
      off();
    };
  }, []);

  if (auth.state === 'checking') return <p class="boot">Connecting…</p>;
  if (auth.state === 'login') return <Login failed={auth.failed} onLogin={(who) => setAuth({ state: 'in', who })} />;

  const who = auth.who;
  const page = route[0] ?? 'overview';
  const arg = route[1];
  const signOut = (): void => {
    setCredential(null);
    setAuth({ state: 'login' });
  };
  let body;
  switch (page) {
    case 'services':
      body = <ServicesPage name={arg} />;
      break;
    case 'routes':
      body = <RoutesPage name={arg} />;
      break;
    case 'registries':
      body = <RegistriesPage />;
      break;
    case 'resilience':
      body = <ResiliencePage />;
      break;
    case 'config':
      body = <ConfigPage who={who} />;
      break;
    case 'overview':
      body = <OverviewPage />;
      break;
    default:
      body = <p class="error">No page {page}.</p>;
  }
  return (
    <div class="layout">
      <nav class="nav">
        <div class="nav-inner">
          <div class="brand">meshgate</div>
          {PAGES.map(([id, label]) => (
            <a key={id} href={href(id)} class={page === id ? 'active' : ''} aria-current={page === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
          <div class="who" data-testid="who">
            {who ? (
              <>
                {who.name && <div>{who.name}</div>}
                <Pill tone={who.role === 'admin' && !who.readOnly ? 'info' : 'muted'}>{who.readOnly ? 'read-only API' : `role ${who.role}`}</Pill>
                {who.authEnabled && (
                  <button class="link" onClick={signOut}>
                    Sign out
                  </button>
                )}
              </>
            ) : (
              <span class="muted small">role unknown</span>
            )}
          </div>
        </div>
      </nav>
      <main class="main">{body}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
