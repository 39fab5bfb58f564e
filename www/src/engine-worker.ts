// The one engine of this origin: every tab of the app talks to it (a
// SharedWorker; a dedicated Worker per tab where SharedWorker is missing).
// Argon2id and all the cryptography run here, never in a page.
import { serveEngines } from 'hypergolix';

serveEngines();
