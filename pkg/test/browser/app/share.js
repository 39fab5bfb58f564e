// Shares `obj` with `to` (a Ghid), retrying while the recipient's identity
// has not reached the server yet (a new agent publishes it when it first
// connects). Used by the page and by its worker.
export async function shareWhenKnown(obj, to) {
  for (let i = 0; ; i++) {
    try {
      return await obj.share(to);
    } catch (e) {
      if (i > 200 || e.kind !== 'unknown_recipient') throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
