// What went wrong, in words a user understands (the engine's error kinds).

interface Kinded {
  kind?: string;
  message?: string;
}

/** An error in what the user typed: shown as it is. */
export function said(message: string): Error {
  return Object.assign(new Error(message), { kind: 'input' });
}

/** A sentence for an error of the engine, the link or the browser. */
export function explain(e: unknown, server?: string): string {
  const err = (e ?? {}) as Kinded;
  switch (err.kind) {
    case 'wrong_password':
      return 'Wrong password. Check it and try again (passwords are case-sensitive).';
    case 'no_account':
      return 'This browser holds no account yet: create one, or log in with your user id.';
    case 'has_account':
      return 'This browser already holds an account: unlock it, or delete this browser’s copy first (Settings).';
    case 'other_account':
      return 'This browser holds another account. Unlock that one, or delete this browser’s copy first.';
    case 'unreachable':
      return `Cannot reach the server${server ? ` at ${server}` : ''}. Check the address and your connection, then try again.`;
    case 'timeout':
      return 'The server did not answer in time. Try again in a moment.';
    case 'wrong_recovery_words':
      return 'Those recovery words do not open this account: check them and the user id (words replaced since no longer work).';
    case 'bad_recovery_words':
      return err.message ? `Check the recovery words: ${err.message.replace(/^these are not recovery words: /, '')}.` : 'Check the recovery words.';
    case 'corrupt_export':
      return 'That file is not a Hypergolix export, or it is damaged (cut short or changed).';
    case 'not_ready':
      return 'Not connected to the server right now: this needs it. Try again once online.';
    case 'in_use':
      return 'This account is open in another tab (perhaps of an older version of this app): close the other Hypergolix tabs, then reload this one.';
    case 'storage':
      return 'The browser refused to store data here (private browsing, or the disk is full?).';
    case 'closed':
      return 'This account was locked. Unlock it again to go on.';
    case 'immutable':
      return 'This object cannot be changed: it is static, or someone else’s.';
    case 'unknown':
    case 'unknown_object':
      return 'That object is not known here (deleted, or not shared with you).';
    case 'unknown_recipient':
      return 'The server does not know that identity yet: check it, or try again once its owner has been online.';
    case 'disconnected':
    case 'connect':
      return 'The engine is not reachable right now. Reload the page.';
    case 'dead':
      return 'This object was deleted.';
    case 'refused':
      return err.message ? `Refused: ${err.message}` : 'Refused.';
    case 'input':
      return err.message ?? 'Please check what you typed.';
    case 'bad_option':
      return err.message ?? 'That is not a valid setting.';
    default:
      return err.message ? `Something went wrong: ${err.message}` : 'Something went wrong.';
  }
}
