// Boots the console: the pages register their routes, a sign-in returning from the identity
// provider is finished, then the hash is rendered.
import { show, notify, describe } from './core.js';
import { finishOidc } from './login.js';
import './pages/window.js';
import './pages/approver.js';
import './pages/division.js';
import './pages/supervisor.js';
import './pages/admin.js';
import './pages/case.js';
import './pages/enterprise.js';

window.addEventListener('hashchange', () => show());
// The skip link moves focus to the content without touching the hash the router reads.
document.querySelector('.skip').addEventListener('click', (e) => { e.preventDefault(); document.getElementById('main').focus(); });
finishOidc()
  .then((signedIn) => signedIn || show())
  .catch(async (e) => { await show(); notify(describe(e), 'error'); });
